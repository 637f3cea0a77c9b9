//! Outbound HTTP through the host's egress chokepoint, and a builder for its requests.
//!
//! The WIT `request` record has six fields, most of them usually empty; spelling them out at
//! every call hides what a request is about. The builder states only what differs (method,
//! URL, a header, a body, which credentials the host attaches) and sends.
//!
//! Remember what the host does to a request: it refuses an `authorization` header (name
//! credentials with [`RequestBuilder::basic`] or [`RequestBuilder::credentials`] instead),
//! writes `content-length` itself, and for multipart bodies chooses the boundary and writes the
//! `content-type`.

pub use crate::bindings::eformidling::transport::http::*;

/// A request under construction; see the module docs.
#[derive(Debug)]
pub struct RequestBuilder<'a> {
    request: Request<'a>,
}

impl<'a> RequestBuilder<'a> {
    /// A request with no headers, no body, no credentials and the host's timeout.
    pub fn new(method: Method, url: impl Into<String>) -> Self {
        Self {
            request: Request {
                method,
                url: url.into(),
                headers: Vec::new(),
                body: Body::Empty,
                credentials: Credentials::None,
                timeout_ms: None,
            },
        }
    }

    /// A `GET` request.
    pub fn get(url: impl Into<String>) -> Self {
        Self::new(Method::Get, url)
    }

    /// A `POST` request.
    pub fn post(url: impl Into<String>) -> Self {
        Self::new(Method::Post, url)
    }

    /// A `PUT` request.
    pub fn put(url: impl Into<String>) -> Self {
        Self::new(Method::Put, url)
    }

    /// A `DELETE` request.
    pub fn delete(url: impl Into<String>) -> Self {
        Self::new(Method::Delete, url)
    }

    /// Adds a header; names are sent as given.
    pub fn header(mut self, name: impl Into<String>, value: impl Into<String>) -> Self {
        self.request.headers.push((name.into(), value.into()));
        self
    }

    /// Sends `data` as the body, with this `content-type`. Secret placeholders in it are filled.
    pub fn bytes(self, content_type: &str, data: Vec<u8>) -> Self {
        self.header("content-type", content_type)
            .body(Body::Bytes(data))
    }

    /// Streams a host-held blob as the body, with this `content-type`.
    pub fn blob(self, content_type: &str, blob: &'a Blob) -> Self {
        self.header("content-type", content_type)
            .body(Body::Blob(blob))
    }

    /// Sends segments of text and blobs as one body, with this `content-type`; see
    /// [`crate::compose::Composer`]. Secret placeholders are filled in the text only.
    pub fn composed(self, content_type: &str, segments: Vec<Segment<'a>>) -> Self {
        self.header("content-type", content_type)
            .body(Body::Composed(segments))
    }

    /// Sends a multipart body; the host writes its `content-type`.
    pub fn multipart(self, multipart: Multipart<'a>) -> Self {
        self.body(Body::Multipart(multipart))
    }

    /// Sets the body as is, without touching the headers.
    pub fn body(mut self, body: Body<'a>) -> Self {
        self.request.body = body;
        self
    }

    /// Names the credentials the host attaches after its egress check.
    pub fn credentials(mut self, credentials: Credentials) -> Self {
        self.request.credentials = credentials;
        self
    }

    /// HTTP Basic from the username/password secret `secret`.
    pub fn basic(self, secret: impl Into<String>) -> Self {
        self.credentials(Credentials::Basic(secret.into()))
    }

    /// An overall timeout, at most the host's own.
    pub fn timeout_ms(mut self, timeout_ms: u32) -> Self {
        self.request.timeout_ms = Some(timeout_ms);
        self
    }

    /// The request record, to pass to [`send`] or [`fetch`] yourself.
    pub fn build(self) -> Request<'a> {
        self.request
    }

    /// Sends the request and reads a response body of at most `max_body` bytes.
    pub fn send(self, max_body: u32) -> Result<Response, Error> {
        send(&self.request, max_body)
    }

    /// Sends the request and streams the response body into a new blob.
    pub fn fetch(self) -> Result<Download, Error> {
        fetch(&self.request)
    }
}

/// A `multipart/form-data` body of these parts.
pub fn form_data(parts: Vec<Part<'_>>) -> Multipart<'_> {
    Multipart {
        subtype: "form-data".to_owned(),
        parameters: Vec::new(),
        parts,
    }
}

/// A form field: `content-disposition: form-data; name="NAME"` and a `content-type`.
pub fn form_field<'a>(name: &str, content_type: &str, content: Content<'a>) -> Part<'a> {
    Part {
        headers: vec![
            (
                "content-disposition".to_owned(),
                format!("form-data; name=\"{}\"", quote(name)),
            ),
            ("content-type".to_owned(), content_type.to_owned()),
        ],
        content,
    }
}

/// A form file: like [`form_field`], with a `filename` in the `content-disposition`.
pub fn form_file<'a>(
    name: &str,
    filename: &str,
    content_type: &str,
    content: Content<'a>,
) -> Part<'a> {
    Part {
        headers: vec![
            (
                "content-disposition".to_owned(),
                format!(
                    "form-data; name=\"{}\"; filename=\"{}\"",
                    quote(name),
                    quote(filename)
                ),
            ),
            ("content-type".to_owned(), content_type.to_owned()),
        ],
        content,
    }
}

/// Escapes a quoted-string value of `content-disposition` the way browsers do for form data
/// (WHATWG): `"` as `%22`, CR and LF as `%0D` and `%0A`, so a name cannot end the header.
fn quote(value: &str) -> String {
    value
        .replace('"', "%22")
        .replace('\r', "%0D")
        .replace('\n', "%0A")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn builder_sets_only_what_it_is_told() {
        let request = RequestBuilder::post("https://peer.example/messages")
            .header("accept", "application/json")
            .bytes("application/json", b"{}".to_vec())
            .basic("loopback")
            .timeout_ms(5_000)
            .build();
        assert!(request.method == Method::Post);
        assert_eq!(request.url, "https://peer.example/messages");
        assert_eq!(
            request.headers,
            vec![
                ("accept".to_owned(), "application/json".to_owned()),
                ("content-type".to_owned(), "application/json".to_owned()),
            ]
        );
        assert!(matches!(&request.body, Body::Bytes(b) if b == b"{}"));
        assert!(matches!(&request.credentials, Credentials::Basic(s) if s == "loopback"));
        assert_eq!(request.timeout_ms, Some(5_000));

        let request = RequestBuilder::get("https://peer.example/").build();
        assert!(request.method == Method::Get);
        assert!(request.headers.is_empty());
        assert!(matches!(request.body, Body::Empty));
        assert!(matches!(request.credentials, Credentials::None));
        assert_eq!(request.timeout_ms, None);
    }

    #[test]
    fn form_parts_carry_disposition_and_type() {
        let field = form_field(
            "envelope",
            "application/json",
            Content::Bytes(b"{}".to_vec()),
        );
        assert_eq!(
            field.headers,
            vec![
                (
                    "content-disposition".to_owned(),
                    "form-data; name=\"envelope\"".to_owned()
                ),
                ("content-type".to_owned(), "application/json".to_owned()),
            ]
        );
        let file = form_file(
            "package",
            "a\"b\r\n.zip",
            "application/zip",
            Content::Bytes(Vec::new()),
        );
        assert_eq!(
            file.headers[0].1,
            "form-data; name=\"package\"; filename=\"a%22b%0D%0A.zip\""
        );
        let body = form_data(vec![field, file]);
        assert_eq!(body.subtype, "form-data");
        assert!(body.parameters.is_empty());
        assert_eq!(body.parts.len(), 2);
    }
}
