//! A small namespace-aware element tree for reading SOAP envelopes.
//!
//! A SOAP envelope is small (the documents travel as MTOM attachments), and a simulator must
//! check element namespaces, optional children and `xsi:type` the way a schema-bound service
//! does, so reading it whole into a tree is simpler and stricter than a streaming match. Names
//! are resolved to (namespace URI, local name); prefixes are never compared.

use quick_xml::NsReader;
use quick_xml::XmlVersion;
use quick_xml::events::{BytesStart, Event};
use quick_xml::name::ResolveResult;

/// An element: its resolved name, attributes, text and child elements.
#[derive(Debug, Clone, Default)]
pub(crate) struct Element {
    /// The namespace URI, if the name is bound to one.
    pub namespace: Option<String>,
    /// The local name.
    pub name: String,
    /// Attributes as (namespace URI, local name, value); namespace declarations left out.
    pub attributes: Vec<(Option<String>, String, String)>,
    /// The text directly inside it, entities resolved.
    pub text: String,
    /// Child elements in document order.
    pub children: Vec<Element>,
}

impl Element {
    /// Whether it is `name` in `namespace`.
    pub fn is(&self, namespace: &str, name: &str) -> bool {
        self.namespace.as_deref() == Some(namespace) && self.name == name
    }

    /// The first child with local name `name`.
    pub fn child(&self, name: &str) -> Option<&Element> {
        self.children.iter().find(|c| c.name == name)
    }

    /// Every child with local name `name`.
    pub fn children_named<'a>(&'a self, name: &'a str) -> impl Iterator<Item = &'a Element> {
        self.children.iter().filter(move |c| c.name == name)
    }

    /// The trimmed text of the first child named `name`, if it has any.
    pub fn text_of(&self, name: &str) -> Option<&str> {
        self.child(name)
            .map(|c| c.text.trim())
            .filter(|t| !t.is_empty())
    }

    /// The value of attribute `name` in `namespace` (`None`: unqualified).
    pub fn attribute(&self, namespace: Option<&str>, name: &str) -> Option<&str> {
        self.attributes
            .iter()
            .find(|(ns, local, _)| ns.as_deref() == namespace && local == name)
            .map(|(_, _, value)| value.as_str())
    }
}

/// The root element of `xml`; the error says how it is not well-formed.
pub(crate) fn parse(xml: &str) -> Result<Element, String> {
    let mut reader = NsReader::from_str(xml);
    let mut open: Vec<Element> = Vec::new();
    loop {
        let (resolved, event) = reader
            .read_resolved_event()
            .map_err(|e| format!("not well-formed XML: {e}"))?;
        let namespace = namespace_of(&resolved)?;
        match event {
            Event::Start(start) => open.push(element(&reader, namespace, &start)?),
            Event::Empty(start) => {
                let empty = element(&reader, namespace, &start)?;
                if let Some(root) = close(&mut open, empty) {
                    return Ok(root);
                }
            }
            Event::End(_) => {
                let done = open.pop().ok_or("an end tag without a start tag")?;
                if let Some(root) = close(&mut open, done) {
                    return Ok(root);
                }
            }
            Event::Text(text) => {
                if let Some(current) = open.last_mut() {
                    current
                        .text
                        .push_str(&text.xml_content(XmlVersion::Implicit1_0));
                }
            }
            Event::CData(data) => {
                if let Some(current) = open.last_mut() {
                    current.text.push_str(&data.into_inner());
                }
            }
            Event::GeneralRef(reference) => {
                let resolved = match reference.resolve_char_ref() {
                    Ok(Some(c)) => c.to_string(),
                    _ => quick_xml::escape::resolve_predefined_entity(&reference)
                        .ok_or_else(|| format!("unknown entity &{};", &*reference))?
                        .to_owned(),
                };
                if let Some(current) = open.last_mut() {
                    current.text.push_str(&resolved);
                }
            }
            Event::Eof => return Err("the document ends before its root element does".into()),
            Event::DocType(_) => return Err("a DOCTYPE is not allowed".into()),
            Event::Decl(_) | Event::PI(_) | Event::Comment(_) => {}
        }
    }
}

/// Attaches `done` to its parent; the root when there is none.
fn close(open: &mut [Element], done: Element) -> Option<Element> {
    match open.last_mut() {
        Some(parent) => {
            parent.children.push(done);
            None
        }
        None => Some(done),
    }
}

fn namespace_of(resolved: &ResolveResult<'_>) -> Result<Option<String>, String> {
    match resolved {
        ResolveResult::Bound(namespace) => Ok(Some(namespace.as_ref().to_owned())),
        ResolveResult::Unbound => Ok(None),
        ResolveResult::Unknown(prefix) => Err(format!("the prefix {prefix:?} is not declared")),
    }
}

fn element(
    reader: &NsReader<&[u8]>,
    namespace: Option<String>,
    start: &BytesStart<'_>,
) -> Result<Element, String> {
    let mut attributes = Vec::new();
    for attribute in start.attributes() {
        let attribute = attribute.map_err(|e| format!("a malformed attribute: {e}"))?;
        if attribute.key.as_namespace_binding().is_some() {
            continue;
        }
        let (resolved, local) = reader.resolver().resolve_attribute(attribute.key);
        let value = attribute
            .normalized_value(XmlVersion::Implicit1_0)
            .map_err(|e| format!("a malformed attribute value: {e}"))?;
        attributes.push((
            namespace_of(&resolved)?,
            local.as_ref().to_owned(),
            value.into_owned(),
        ));
    }
    Ok(Element {
        namespace,
        name: start.local_name().as_ref().to_owned(),
        attributes,
        text: String::new(),
        children: Vec::new(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_resolve_to_namespaces_and_entities_to_text() {
        let root = parse(
            r#"<?xml version="1.0"?><s:Envelope xmlns:s="urn:s" xmlns:x="urn:x">
                <s:Body><x:op xmlns:xsi="urn:xsi"><a xsi:type="x:T">1 &amp; 2&#33;</a><b/></x:op></s:Body>
            </s:Envelope>"#,
        )
        .unwrap();
        assert!(root.is("urn:s", "Envelope"));
        let op = &root.child("Body").unwrap().children[0];
        assert!(op.is("urn:x", "op"));
        let a = op.child("a").unwrap();
        assert_eq!(a.namespace, None);
        assert_eq!(a.text, "1 & 2!");
        assert_eq!(a.attribute(Some("urn:xsi"), "type"), Some("x:T"));
        assert_eq!(op.text_of("b"), None);
        assert!(parse("<a><b></a>").is_err());
        assert!(parse("<p:a/>").unwrap_err().contains("not declared"));
        assert!(parse("<a>").is_err());
    }
}
