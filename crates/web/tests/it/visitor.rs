//! A browser stand-in for in-process site tests: keeps the session cookie, sends `Accept: text/html`, and
//! reads values out of pages. (The real browser runs in the `skybook` crate's tests.)

use axum::body::Body;
use axum::http::{header, Request, StatusCode};
use axum::Router;
use tower::ServiceExt;

pub struct Visitor {
    router: Router,
    /// `skybook_session=<value>`, as the browser would send it back.
    pub cookie: Option<String>,
    /// The last `Set-Cookie` for the session, attributes included.
    pub last_set_cookie: Option<String>,
    /// The forms' CSRF cookie (`name=value`), and its last `Set-Cookie` with attributes.
    pub csrf_cookie: Option<String>,
    pub last_csrf_cookie: Option<String>,
    /// Sent as `Authorization: Bearer ...` when set.
    pub bearer: Option<String>,
}

#[derive(Debug)]
pub struct Page {
    pub status: StatusCode,
    pub location: Option<String>,
    pub request_id: Option<String>,
    pub html: String,
}

impl Visitor {
    pub fn new(router: Router) -> Self {
        Self {
            router,
            cookie: None,
            last_set_cookie: None,
            csrf_cookie: None,
            last_csrf_cookie: None,
            bearer: None,
        }
    }

    /// The same browser (cookie jar) talking to another node.
    pub fn switch_to(&mut self, router: Router) {
        self.router = router;
    }

    pub async fn get(&mut self, path: &str) -> Page {
        self.send(Request::get(path), Body::empty()).await
    }

    pub async fn post(&mut self, path: &str, fields: &[(&str, &str)]) -> Page {
        let body = serde_urlencoded::to_string(fields).unwrap();
        let request =
            Request::post(path).header(header::CONTENT_TYPE, "application/x-www-form-urlencoded");
        self.send(request, Body::from(body)).await
    }

    /// POSTs `body` as it is, of `content_type` (a multipart form, say).
    pub async fn post_body(&mut self, path: &str, content_type: &str, body: Vec<u8>) -> Page {
        self.post_with_headers(path, content_type, body, &[]).await
    }

    /// [`Self::post_body`] with more headers.
    pub async fn post_with_headers(
        &mut self,
        path: &str,
        content_type: &str,
        body: Vec<u8>,
        headers: &[(&str, &str)],
    ) -> Page {
        let mut request = Request::post(path).header(header::CONTENT_TYPE, content_type);
        for (name, value) in headers {
            request = request.header(*name, *value);
        }
        self.send(request, Body::from(body)).await
    }

    /// Signs in at `/admin/login` with `token`; returns the CSRF token of the admin's session.
    pub async fn sign_in_admin(&mut self, token: &str) -> String {
        let login = self.get("/admin/login").await;
        let done = self
            .post("/admin/login", &[("csrf", &login.csrf()), ("token", token)])
            .await;
        assert_eq!(done.location.as_deref(), Some("/admin"), "{}", done.html);
        self.get("/admin").await.csrf()
    }

    /// Follows one redirect with a GET.
    pub async fn follow(&mut self, page: &Page) -> Page {
        let to = page
            .location
            .clone()
            .unwrap_or_else(|| panic!("not a redirect: {page:?}"));
        self.get(&to).await
    }

    async fn send(&mut self, request: axum::http::request::Builder, body: Body) -> Page {
        let mut request = request.header(header::ACCEPT, "text/html,application/xhtml+xml");
        let jar: Vec<&String> = self.cookie.iter().chain(&self.csrf_cookie).collect();
        if !jar.is_empty() {
            let joined: Vec<&str> = jar.iter().map(|c| c.as_str()).collect();
            request = request.header(header::COOKIE, joined.join("; "));
        }
        if let Some(token) = &self.bearer {
            request = request.header(header::AUTHORIZATION, format!("Bearer {token}"));
        }
        let response = self
            .router
            .clone()
            .oneshot(request.body(body).unwrap())
            .await
            .unwrap();
        for set in response.headers().get_all(header::SET_COOKIE) {
            let set = set.to_str().unwrap().to_owned();
            let pair = set.split(';').next().unwrap().to_owned();
            if let Some(value) = pair.strip_prefix("skybook_session=") {
                self.cookie =
                    (!value.is_empty() && !set.contains("Max-Age=0")).then_some(pair.clone());
                self.last_set_cookie = Some(set);
            } else if pair.starts_with("__Host-skybook_csrf=") || pair.starts_with("skybook_csrf=")
            {
                self.csrf_cookie = Some(pair);
                self.last_csrf_cookie = Some(set);
            }
        }
        let header_str = |name: &str| {
            response
                .headers()
                .get(name)
                .map(|v| v.to_str().unwrap().to_owned())
        };
        let (location, request_id) = (header_str("location"), header_str("x-request-id"));
        let status = response.status();
        let bytes = axum::body::to_bytes(response.into_body(), usize::MAX)
            .await
            .unwrap();
        Page {
            status,
            location,
            request_id,
            html: String::from_utf8(bytes.to_vec()).unwrap(),
        }
    }
}

impl Page {
    /// The `value` of the input named `name`.
    pub fn input(&self, name: &str) -> Option<String> {
        let at = self.html.find(&format!("name=\"{name}\""))?;
        let tag_start = self.html[..at].rfind('<')?;
        let tag_end = at + self.html[at..].find('>')?;
        let tag = &self.html[tag_start..tag_end];
        let value = tag.split(" value=\"").nth(1)?;
        Some(
            value[..value.find('"')?]
                .replace("&#39;", "'")
                .replace("&#34;", "\"")
                .replace("&#38;", "&"),
        )
    }

    pub fn csrf(&self) -> String {
        self.input("csrf").expect("page has a CSRF field")
    }

    /// The page's `<main>`, for snapshots.
    pub fn main(&self) -> &str {
        let start = self.html.find("<main").expect("page has <main>");
        let end = self.html.find("</main>").expect("page has </main>") + "</main>".len();
        &self.html[start..end]
    }

    pub fn text_of_id(&self, id: &str) -> Option<String> {
        let at = self.html.find(&format!("id=\"{id}\""))?;
        let open_end = at + self.html[at..].find('>')? + 1;
        let close = open_end + self.html[open_end..].find('<')?;
        Some(self.html[open_end..close].trim().to_owned())
    }
}
