//! Tiny helpers over `roxmltree` for the XML APIs (Namecheap; Dynadot api3
//! can use them too). Elements are matched by local name, so the response
//! namespace (`http://` or `https://api.namecheap.com/xml.response`) is ignored.

use roxmltree::{Document, Node};

/// Parses `text` as an XML document.
pub(crate) fn parse(text: &str) -> Result<Document<'_>, String> {
    Document::parse(text).map_err(|e| format!("unparseable XML: {e}"))
}

/// The first descendant of `node` (itself included) with local name `name`.
pub(crate) fn first<'a, 'input>(node: Node<'a, 'input>, name: &str) -> Option<Node<'a, 'input>> {
    node.descendants()
        .find(|n| n.is_element() && n.tag_name().name() == name)
}

/// Every descendant of `node` with local name `name`, in document order.
pub(crate) fn all<'a, 'input>(node: Node<'a, 'input>, name: &str) -> Vec<Node<'a, 'input>> {
    node.descendants()
        .filter(|n| n.is_element() && n.tag_name().name() == name)
        .collect()
}

/// The trimmed text content of `node` (empty when none).
pub(crate) fn text(node: Node<'_, '_>) -> String {
    node.text().unwrap_or_default().trim().to_string()
}
