//! Replays the committed fuzz corpus (`fuzz/corpus/<target>/*`) through the same entry
//! points the fuzz targets use, so every seed and every crash found so far is checked
//! by a plain `cargo test`: no panic, a documented status, nothing run for a refused
//! batch, and each target's own invariant (see `fuzz/src/lib.rs`).

#![allow(clippy::unwrap_used, clippy::expect_used)]

#[allow(dead_code, reason = "the fuzz targets' entry point is not used here")]
#[path = "../../fuzz/src/lib.rs"]
mod harness;

use std::path::{Path, PathBuf};

fn corpus() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../fuzz/corpus")
}

#[test]
fn every_corpus_file_of_every_target_replays_cleanly() {
    for target in harness::TARGETS {
        let dir = corpus().join(target.name);
        let files: Vec<PathBuf> = std::fs::read_dir(&dir)
            .unwrap_or_else(|err| panic!("{}: {err}", dir.display()))
            .map(|entry| entry.unwrap().path())
            .collect();
        assert!(!files.is_empty(), "{} has no seeds", dir.display());
        for file in files {
            let data = std::fs::read(&file).unwrap();
            let result = std::panic::catch_unwind(|| harness::run(target, &data));
            assert!(result.is_ok(), "{} failed its checks", file.display());
        }
    }
}

#[test]
fn every_corpus_folder_belongs_to_a_target() {
    for entry in std::fs::read_dir(corpus()).unwrap() {
        let name = entry.unwrap().file_name().to_string_lossy().into_owned();
        assert!(
            harness::TARGETS.iter().any(|t| t.name == name),
            "fuzz/corpus/{name} has no target in fuzz/src/lib.rs"
        );
    }
}

/// The seeds cover both sides of each target: some are answered, some refused. A
/// corpus of only one kind would exercise half the endpoint.
#[test]
fn the_seeds_reach_the_executor_and_the_refusals() {
    for target in harness::TARGETS {
        let mut statuses = std::collections::BTreeSet::new();
        for entry in std::fs::read_dir(corpus().join(target.name)).unwrap() {
            let data = std::fs::read(entry.unwrap().path()).unwrap();
            if let Some(outcome) = harness::run(target, &data) {
                statuses.insert(outcome.status.as_u16());
            }
        }
        assert!(statuses.contains(&200), "{}: {statuses:?}", target.name);
        assert!(statuses.contains(&422), "{}: {statuses:?}", target.name);
    }
}
