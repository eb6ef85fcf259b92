//! The crate's modules depend on each other one way: no module uses, directly or
//! through others, a module that uses it. Read from the source files themselves, so
//! a `use` that closes a loop fails here, naming the loop.
//!
//! A module is a file (`plan/graph.rs` is `plan::graph`, `plan/mod.rs` is `plan`);
//! it uses every module named by a path in its code (doc comments and test modules
//! aside): `crate::`, `super::`, or the name of one of its own submodules, resolved
//! to the deepest module that exists.

#![allow(clippy::unwrap_used, clippy::expect_used)] // tests fail loudly by design

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};

/// Every module of `src/` and the modules its code uses.
fn graph() -> BTreeMap<String, BTreeSet<String>> {
    let src = Path::new(env!("CARGO_MANIFEST_DIR")).join("src");
    let files = rust_files(&src);
    let modules: BTreeSet<String> = files.iter().map(|f| module_of(&src, f)).collect();
    let mut graph = BTreeMap::new();
    for file in &files {
        let module = module_of(&src, file);
        let code = code_of(&std::fs::read_to_string(file).unwrap());
        let children: Vec<&str> = modules
            .iter()
            .filter(|m| !m.is_empty() && parent(m) == module)
            .map(|m| m.rsplit("::").next().unwrap())
            .collect();
        let mut uses = BTreeSet::new();
        for path in paths(&code, &children) {
            let absolute = if let Some(rest) = path.strip_prefix("crate::") {
                rest.to_owned()
            } else if let Some(rest) = path.strip_prefix("super::") {
                join(&parent(&module), rest)
            } else {
                join(&module, &path)
            };
            if let Some(used) = deepest(&modules, &absolute) {
                if used != module {
                    uses.insert(used);
                }
            }
        }
        graph.insert(module, uses);
    }
    graph
}

fn rust_files(dir: &Path) -> Vec<PathBuf> {
    let mut files = Vec::new();
    for entry in std::fs::read_dir(dir).unwrap() {
        let path = entry.unwrap().path();
        if path.is_dir() {
            files.extend(rust_files(&path));
        } else if path.extension().is_some_and(|e| e == "rs")
            && path.file_name().is_some_and(|n| n != "tests.rs")
        {
            files.push(path);
        }
    }
    files
}

/// `codec/native/decode.rs` → `codec::native::decode`; `lib.rs` → the root, "".
fn module_of(src: &Path, file: &Path) -> String {
    let relative = file.strip_prefix(src).unwrap().with_extension("");
    let mut parts: Vec<String> = relative
        .iter()
        .map(|p| p.to_string_lossy().into_owned())
        .collect();
    if matches!(parts.last().map(String::as_str), Some("mod" | "lib")) {
        parts.pop();
    }
    parts.join("::")
}

fn parent(module: &str) -> String {
    module
        .rsplit_once("::")
        .map_or(String::new(), |(p, _)| p.to_owned())
}

fn join(base: &str, rest: &str) -> String {
    match rest.strip_prefix("super::") {
        Some(rest) => join(&parent(base), rest),
        None if base.is_empty() => rest.to_owned(),
        None => format!("{base}::{rest}"),
    }
}

/// The longest prefix of `path` that is a module.
fn deepest(modules: &BTreeSet<String>, path: &str) -> Option<String> {
    let segments: Vec<&str> = path.split("::").collect();
    (1..=segments.len())
        .rev()
        .map(|n| segments[..n].join("::"))
        .find(|candidate| modules.contains(candidate))
}

/// A file's code: comments and the trailing `#[cfg(test)]` module left out.
fn code_of(text: &str) -> String {
    let text = text.split("#[cfg(test)]").next().unwrap();
    text.lines()
        .filter(|line| !line.trim_start().starts_with("//"))
        .collect::<Vec<_>>()
        .join("\n")
}

/// Every `crate::a::b`, `super::a` and `child::a` path (for each of `children`),
/// with `use crate::{a, b::c}` groups spread into one path each.
fn paths(code: &str, children: &[&str]) -> Vec<String> {
    let mut found = Vec::new();
    let prefixes = ["crate::".to_owned(), "super::".to_owned()]
        .into_iter()
        .chain(children.iter().map(|child| format!("{child}::")));
    for prefix in prefixes {
        let prefix = prefix.as_str();
        let mut rest = code;
        while let Some(at) = rest.find(prefix) {
            let before = rest[..at].chars().last();
            rest = &rest[at..];
            let path_len = rest
                .find(|c: char| !(c.is_alphanumeric() || c == '_' || c == ':'))
                .unwrap_or(rest.len());
            let path = rest[..path_len].trim_end_matches(':');
            // `a_crate::x` or `foo::super` are not paths into this crate.
            if !before.is_some_and(|c| c.is_alphanumeric() || c == '_' || c == ':') {
                if rest[path_len..].starts_with('{') {
                    let group = &rest[path_len + 1..rest.find('}').unwrap()];
                    for item in group.split(',') {
                        match item.trim().split(" as ").next().unwrap() {
                            "" => {}
                            "self" => found.push(path.to_owned()),
                            item => found.push(format!("{path}::{item}")),
                        }
                    }
                } else {
                    found.push(path.to_owned());
                }
            }
            rest = &rest[path_len.max(1)..];
        }
    }
    found
}

/// A loop in `graph`, as the modules along it, if there is one.
fn a_loop(graph: &BTreeMap<String, BTreeSet<String>>) -> Option<Vec<String>> {
    #[derive(Clone, Copy, PartialEq)]
    enum Mark {
        New,
        Open,
        Done,
    }
    let mut marks: BTreeMap<&str, Mark> = graph.keys().map(|m| (m.as_str(), Mark::New)).collect();
    fn visit<'a>(
        module: &'a str,
        graph: &'a BTreeMap<String, BTreeSet<String>>,
        marks: &mut BTreeMap<&'a str, Mark>,
        stack: &mut Vec<&'a str>,
    ) -> Option<Vec<String>> {
        marks.insert(module, Mark::Open);
        stack.push(module);
        for used in graph.get(module).into_iter().flatten() {
            match marks.get(used.as_str()).copied().unwrap_or(Mark::Done) {
                Mark::Open => {
                    let start = stack.iter().position(|m| m == used).unwrap();
                    let mut cycle: Vec<String> =
                        stack[start..].iter().map(|m| m.to_string()).collect();
                    cycle.push(used.clone());
                    return Some(cycle);
                }
                Mark::New => {
                    if let Some(cycle) = visit(used, graph, marks, stack) {
                        return Some(cycle);
                    }
                }
                Mark::Done => {}
            }
        }
        stack.pop();
        marks.insert(module, Mark::Done);
        None
    }
    let modules: Vec<&str> = graph.keys().map(String::as_str).collect();
    for module in modules {
        if marks[module] == Mark::New {
            if let Some(cycle) = visit(module, graph, &mut marks, &mut Vec::new()) {
                return Some(cycle);
            }
        }
    }
    None
}

#[test]
fn no_module_depends_on_a_module_that_depends_on_it() {
    let graph = graph();
    assert!(graph.len() > 20, "the source files were found: {graph:?}");
    assert!(
        graph["endpoint"].contains("engine") && graph["codec::native::op"].contains("codec::json"),
        "the uses were read: {graph:#?}"
    );
    if let Some(cycle) = a_loop(&graph) {
        panic!(
            "modules depend on each other in a loop: {}",
            cycle.join(" -> ")
        );
    }
}

#[test]
fn the_loop_finder_finds_loops() {
    let mut graph: BTreeMap<String, BTreeSet<String>> = BTreeMap::new();
    for (module, uses) in [("a", &["b"][..]), ("b", &["c"]), ("c", &["a"]), ("d", &[])] {
        graph.insert(module.into(), uses.iter().map(|u| u.to_string()).collect());
    }
    assert_eq!(a_loop(&graph).unwrap(), ["a", "b", "c", "a"]);
    graph.get_mut("c").unwrap().clear();
    assert_eq!(a_loop(&graph), None);
}

#[test]
fn paths_are_read_from_code_not_comments() {
    let code = code_of(
        "use crate::codec::{self, json::Writer, Field};\nuse super::parse;\n/// [`crate::Config`]\nlet x = my_crate::y;\npub use request::Operation;\nnative::decode(body)",
    );
    assert_eq!(
        paths(&code, &["request", "native"]),
        [
            "crate::codec",
            "crate::codec::json::Writer",
            "crate::codec::Field",
            "super::parse",
            "request::Operation",
            "native::decode"
        ]
    );
}
