//! Just enough XML for the metadata channels write and the answers they read.
//!
//! Plugins write their SOAP bodies and manifests themselves and only ever read a few leaf
//! elements back (a SOAP operation's `return` values, a fault's reason, an arkivmelding's title
//! and numbers), none of which nest inside an element of the same name. A parser crate would
//! cost every plugin more than these few lines; elements are found by local name, so whichever
//! prefix a service chose is accepted.

/// `text` escaped for an element's content or a double-quoted attribute.
pub fn escape(text: &str) -> String {
    let mut escaped = String::with_capacity(text.len());
    for c in text.chars() {
        match c {
            '<' => escaped.push_str("&lt;"),
            '>' => escaped.push_str("&gt;"),
            '&' => escaped.push_str("&amp;"),
            '"' => escaped.push_str("&quot;"),
            '\'' => escaped.push_str("&apos;"),
            c => escaped.push(c),
        }
    }
    escaped
}

/// The raw content of every element named `local` (any prefix), in document order; an empty
/// element gives an empty string.
pub fn contents<'a>(xml: &'a str, local: &str) -> Vec<&'a str> {
    let mut found = Vec::new();
    let mut rest = xml;
    while let Some(open) = rest.find('<') {
        let after = &rest[open + 1..];
        let name_end = after
            .find(|c: char| c.is_whitespace() || c == '>' || c == '/')
            .unwrap_or(after.len());
        let name = &after[..name_end];
        let Some(tag_end) = after.find('>') else {
            break;
        };
        let qualified_local = name.rsplit(':').next().unwrap_or(name);
        if qualified_local == local && !name.starts_with(['/', '?', '!']) {
            if after[..tag_end].ends_with('/') {
                found.push("");
                rest = &after[tag_end + 1..];
                continue;
            }
            let body = &after[tag_end + 1..];
            let close = format!("</{name}>");
            match body.find(&close) {
                Some(end) => {
                    found.push(&body[..end]);
                    rest = &body[end + close.len()..];
                }
                None => break,
            }
        } else {
            rest = &after[tag_end + 1..];
        }
    }
    found
}

/// The text of the first element named `local`, unescaped and trimmed; none when absent or
/// empty.
pub fn first_text(xml: &str, local: &str) -> Option<String> {
    contents(xml, local)
        .first()
        .map(|content| unescape(content).trim().to_owned())
        .filter(|text| !text.is_empty())
}

/// Element content with its entity and character references resolved and CDATA opened.
pub fn unescape(content: &str) -> String {
    let mut text = String::with_capacity(content.len());
    let mut rest = content;
    while let Some(at) = rest.find(['&', '<']) {
        text.push_str(&rest[..at]);
        rest = &rest[at..];
        if let Some(cdata) = rest.strip_prefix("<![CDATA[") {
            let end = cdata.find("]]>").unwrap_or(cdata.len());
            text.push_str(&cdata[..end]);
            rest = cdata.get(end + 3..).unwrap_or("");
            continue;
        }
        if rest.starts_with('<') {
            // Markup inside a leaf is not expected; keep it as written.
            text.push('<');
            rest = &rest[1..];
            continue;
        }
        let Some(semicolon) = rest.find(';') else {
            text.push_str(rest);
            return text;
        };
        let entity = &rest[1..semicolon];
        let resolved = match entity {
            "lt" => Some('<'),
            "gt" => Some('>'),
            "amp" => Some('&'),
            "quot" => Some('"'),
            "apos" => Some('\''),
            _ => entity
                .strip_prefix("#x")
                .and_then(|hex| u32::from_str_radix(hex, 16).ok())
                .or_else(|| entity.strip_prefix('#').and_then(|dec| dec.parse().ok()))
                .and_then(char::from_u32),
        };
        match resolved {
            Some(c) => {
                text.push(c);
                rest = &rest[semicolon + 1..];
            }
            None => {
                text.push('&');
                rest = &rest[1..];
            }
        }
    }
    text.push_str(rest);
    text
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn escaping_covers_markup_and_quotes_and_round_trips() {
        assert_eq!(escape("a<b>&\"'"), "a&lt;b&gt;&amp;&quot;&apos;");
        let text = "a<b>&\"c'";
        assert_eq!(unescape(&escape(text)), text);
        assert_eq!(unescape("&#65;&#x42;&unknown;"), "AB&unknown;");
    }

    #[test]
    fn nested_elements_of_soap_answers_are_found_by_local_name() {
        let xml = "<s:Envelope><s:Body><a:File><a:Ref>1</a:Ref></a:File>\
                   <File xmlns=\"x\"><Ref> 2 </Ref></File><Empty/></s:Body></s:Envelope>";
        let files = contents(xml, "File");
        assert_eq!(files.len(), 2);
        assert_eq!(first_text(files[0], "Ref").as_deref(), Some("1"));
        assert_eq!(first_text(files[1], "Ref").as_deref(), Some("2"));
        assert_eq!(contents(xml, "Empty"), vec![""]);
        assert_eq!(first_text(xml, "Missing"), None);
    }

    #[test]
    fn elements_are_found_by_local_name_whatever_the_prefix() {
        let xml = "<ns2:r xmlns:ns2=\"x\"><return>a</return><x:return>b</x:return><return/><returned>c</returned></ns2:r>";
        assert_eq!(contents(xml, "return"), ["a", "b", ""]);
        assert_eq!(first_text(xml, "returned").as_deref(), Some("c"));
        assert_eq!(first_text(xml, "missing"), None);
    }

    #[test]
    fn escaping_round_trips_and_references_resolve() {
        let text = "a<b>&\"c'";
        assert_eq!(unescape(&escape(text)), text);
        assert_eq!(unescape("&#230;&#xF8;<![CDATA[<å>]]>"), "æø<å>");
        assert_eq!(unescape("a & b"), "a & b");
    }
}
