//! Just enough XML for the broker service's answers and requests.
//!
//! The plugin writes small, fixed SOAP envelopes and reads a handful of elements from the
//! answers (a file reference, a list of available files, a fault's reason). A full parser
//! would cost more of the component's size than the whole protocol, so elements are found by
//! local name, ignoring prefixes, which is all the broker's answers need.

/// `text` escaped for an XML element or attribute value.
pub fn escape(text: &str) -> String {
    let mut escaped = String::with_capacity(text.len());
    for c in text.chars() {
        match c {
            '&' => escaped.push_str("&amp;"),
            '<' => escaped.push_str("&lt;"),
            '>' => escaped.push_str("&gt;"),
            '"' => escaped.push_str("&quot;"),
            '\'' => escaped.push_str("&apos;"),
            c => escaped.push(c),
        }
    }
    escaped
}

/// Undoes the predefined entities and numeric character references.
pub fn unescape(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    let mut rest = text;
    while let Some(start) = rest.find('&') {
        out.push_str(&rest[..start]);
        let after = &rest[start..];
        let Some(end) = after.find(';') else {
            out.push_str(after);
            return out;
        };
        let entity = &after[1..end];
        let decoded = match entity {
            "amp" => Some('&'),
            "lt" => Some('<'),
            "gt" => Some('>'),
            "quot" => Some('"'),
            "apos" => Some('\''),
            _ => entity
                .strip_prefix("#x")
                .and_then(|hex| u32::from_str_radix(hex, 16).ok())
                .or_else(|| entity.strip_prefix('#').and_then(|d| d.parse().ok()))
                .and_then(char::from_u32),
        };
        match decoded {
            Some(c) => out.push(c),
            None => out.push_str(&after[..=end]),
        }
        rest = &after[end + 1..];
    }
    out.push_str(rest);
    out
}

/// The inner content of every element whose local name is `name`, in document order (not
/// nested in one another).
pub fn elements<'a>(xml: &'a str, name: &str) -> Vec<&'a str> {
    let mut found = Vec::new();
    let mut rest = xml;
    while let Some((open_end, prefix, empty)) = next_open(rest, name) {
        if empty {
            found.push("");
            rest = &rest[open_end..];
            continue;
        }
        let close = if prefix.is_empty() {
            format!("</{name}>")
        } else {
            format!("</{prefix}:{name}>")
        };
        let body = &rest[open_end..];
        match body.find(&close) {
            Some(end) => {
                found.push(&body[..end]);
                rest = &body[end + close.len()..];
            }
            None => break,
        }
    }
    found
}

/// The text of the first element named `name`, unescaped and trimmed.
pub fn text(xml: &str, name: &str) -> Option<String> {
    elements(xml, name)
        .first()
        .map(|inner| unescape(inner.trim()))
}

/// Finds the next start tag with local name `name`: the offset just past it, its prefix, and
/// whether it is empty (`<a/>`).
fn next_open<'a>(xml: &'a str, name: &str) -> Option<(usize, &'a str, bool)> {
    let mut from = 0;
    while let Some(lt) = xml[from..].find('<').map(|i| i + from) {
        let tag_end = xml[lt..].find('>').map(|i| i + lt)?;
        let tag = &xml[lt + 1..tag_end];
        from = tag_end + 1;
        if tag.starts_with(['/', '?', '!']) {
            continue;
        }
        let qualified = tag
            .split(|c: char| c.is_whitespace() || c == '/')
            .next()
            .unwrap_or("");
        let (prefix, local) = qualified.split_once(':').unwrap_or(("", qualified));
        if local == name {
            return Some((tag_end + 1, prefix, tag.ends_with('/')));
        }
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn escaping_round_trips() {
        let text = "a<b>&\"c'";
        assert_eq!(escape(text), "a&lt;b&gt;&amp;&quot;c&apos;");
        assert_eq!(unescape(&escape(text)), text);
        assert_eq!(unescape("&#65;&#x42;&unknown;"), "AB&unknown;");
    }

    #[test]
    fn elements_are_found_by_local_name_whatever_the_prefix() {
        let xml = "<s:Envelope><s:Body><a:File><a:Ref>1</a:Ref></a:File>\
                   <File xmlns=\"x\"><Ref> 2 </Ref></File><Empty/></s:Body></s:Envelope>";
        let files = elements(xml, "File");
        assert_eq!(files.len(), 2);
        assert_eq!(text(files[0], "Ref").as_deref(), Some("1"));
        assert_eq!(text(files[1], "Ref").as_deref(), Some("2"));
        assert_eq!(elements(xml, "Empty"), vec![""]);
        assert_eq!(text(xml, "Missing"), None);
    }
}
