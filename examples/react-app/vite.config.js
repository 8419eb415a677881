// Relative asset URLs, so the built app works under /examples/react-app/dist/ on the demo
// server (which serves the sign-in tokens it needs). JSX is compiled by Vite itself.
export default { base: './' };
