//! A request ID on every request: the caller's `X-Request-ID` when it is a sane one (a
//! load balancer's, say), else a new one. It is on every log line of the request (see the
//! trace span in `lib.rs`) and in the response, so a user's report can be found in the logs.

use axum::extract::Request;
use axum::http::HeaderValue;
use axum::middleware::Next;
use axum::response::Response;

pub const HEADER: &str = "x-request-id";

/// Whether a caller's ID can be used as it is: short, and plain characters only (it goes
/// into logs).
fn acceptable(id: &str) -> bool {
    (1..=64).contains(&id.len())
        && id
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"-_.:".contains(&b))
}

/// `path` as logged: the admin API's user paths name users by the site's own IDs, which
/// are often emails, so that segment is replaced (`/v1/admin/orgs/acme/users/…/disable`).
pub fn loggable_path(path: &str) -> std::borrow::Cow<'_, str> {
    let Some(rest) = path.strip_prefix("/v1/admin/orgs/") else {
        return path.into();
    };
    let mut parts: Vec<&str> = rest.split('/').collect();
    if parts.get(1) == Some(&"users") && parts.len() > 2 {
        parts[2] = "…";
        return format!("/v1/admin/orgs/{}", parts.join("/")).into();
    }
    path.into()
}

pub async fn assign(mut request: Request, next: Next) -> Response {
    let given = request
        .headers()
        .get(HEADER)
        .and_then(|v| v.to_str().ok())
        .filter(|id| acceptable(id))
        .map(str::to_owned);
    let id = given.unwrap_or_else(|| crate::db::new_id("rq"));
    let value = HeaderValue::from_str(&id).expect("checked or made of plain characters");
    request.headers_mut().insert(HEADER, value.clone());
    let mut response = next.run(request).await;
    response.headers_mut().insert(HEADER, value);
    response
}

#[cfg(test)]
mod tests {
    #[test]
    fn the_sites_user_ids_stay_out_of_logged_paths() {
        use super::loggable_path as p;
        assert_eq!(
            p("/v1/admin/orgs/acme/users/nia%40acme.test/disable"),
            "/v1/admin/orgs/acme/users/…/disable"
        );
        assert_eq!(
            p("/v1/admin/orgs/acme/users/emp-7"),
            "/v1/admin/orgs/acme/users/…"
        );
        assert_eq!(p("/v1/admin/orgs/acme/users"), "/v1/admin/orgs/acme/users");
        assert_eq!(
            p("/v1/admin/orgs/acme/groups/desk"),
            "/v1/admin/orgs/acme/groups/desk"
        );
        assert_eq!(p("/v1/users/u_1/keys"), "/v1/users/u_1/keys");
    }

    #[test]
    fn only_plain_short_ids_are_kept() {
        assert!(super::acceptable("lb-1234.abc:9"));
        assert!(!super::acceptable(""));
        assert!(!super::acceptable(&"x".repeat(65)));
        assert!(!super::acceptable("a b"));
        assert!(!super::acceptable("a\"}{"));
    }
}
