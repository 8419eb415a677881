// Relative asset URLs, so the built app works under /examples/vite-app/dist/ on the demo
// server (which serves the sign-in tokens it needs).
export default { base: './' };
