//! Reading the agency's answers: the few texts a response or fault carries, found by the local
//! names of the elements around them.
//!
//! Altinn's answers are small and their prefixes vary (WCF chooses them), so the plugin reads
//! each text with the path of local names that leads to it and asks for paths by their end,
//! instead of binding a schema.

use quick_xml::events::Event;
use quick_xml::reader::Reader;

/// Every non-empty text of the document with the local names of its enclosing elements.
#[derive(Debug)]
pub struct Texts(Vec<(Vec<String>, String)>);

impl Texts {
    /// Reads `xml`; the error says where it is malformed.
    pub fn read(xml: &[u8]) -> Result<Self, String> {
        let mut reader = Reader::from_reader(xml);
        let mut path: Vec<String> = Vec::new();
        let mut texts = Vec::new();
        let mut text = String::new();
        loop {
            match reader.read_event() {
                Ok(Event::Start(start)) => {
                    flush(&mut texts, &path, &mut text);
                    path.push(start.local_name().as_ref().to_owned());
                }
                Ok(Event::End(_)) => {
                    flush(&mut texts, &path, &mut text);
                    path.pop();
                }
                Ok(Event::Text(content)) => text.push_str(&content.xml10_content()),
                Ok(Event::GeneralRef(reference)) => {
                    let resolved = match reference.resolve_char_ref() {
                        Ok(Some(c)) => c.to_string(),
                        _ => match reference.as_ref() {
                            "lt" => "<".into(),
                            "gt" => ">".into(),
                            "amp" => "&".into(),
                            "quot" => "\"".into(),
                            "apos" => "'".into(),
                            other => return Err(format!("unknown entity &{other};")),
                        },
                    };
                    text.push_str(&resolved);
                }
                Ok(Event::Eof) => return Ok(Self(texts)),
                Ok(_) => {}
                Err(error) => {
                    return Err(format!(
                        "malformed XML at byte {}: {error}",
                        reader.error_position()
                    ));
                }
            }
        }
    }

    /// The first text whose path ends with `suffix`.
    pub fn first(&self, suffix: &[&str]) -> Option<&str> {
        self.0
            .iter()
            .find(|(path, _)| ends_with(path, suffix))
            .map(|(_, text)| text.as_str())
    }

    /// Every (path, text) in document order.
    pub fn entries(&self) -> &[(Vec<String>, String)] {
        &self.0
    }
}

/// Keeps the text gathered for the element at `path`, if any, and starts afresh.
fn flush(texts: &mut Vec<(Vec<String>, String)>, path: &[String], text: &mut String) {
    if !text.trim().is_empty() {
        texts.push((path.to_vec(), text.trim().to_owned()));
    }
    text.clear();
}

/// Whether `path` ends with the names of `suffix`.
pub fn ends_with(path: &[String], suffix: &[&str]) -> bool {
    path.len() >= suffix.len()
        && path[path.len() - suffix.len()..]
            .iter()
            .zip(suffix)
            .all(|(name, wanted)| name == wanted)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn texts_are_found_by_the_end_of_their_path() {
        let xml = br#"<s:Envelope xmlns:s="x"><s:Body><a:R xmlns:a="y"><a:V>one &amp; two</a:V>
            <a:V>three</a:V><a:W><a:V>deep</a:V></a:W></a:R></s:Body></s:Envelope>"#;
        let texts = Texts::read(xml).unwrap();
        assert_eq!(texts.first(&["R", "V"]), Some("one & two"));
        let all: Vec<&str> = texts
            .entries()
            .iter()
            .filter(|(path, _)| ends_with(path, &["V"]))
            .map(|(_, text)| text.as_str())
            .collect();
        assert_eq!(all, ["one & two", "three", "deep"]);
        assert_eq!(texts.first(&["W", "V"]), Some("deep"));
        assert_eq!(texts.first(&["Missing"]), None);
        assert!(Texts::read(b"<a><b></a>").is_err());
    }
}
