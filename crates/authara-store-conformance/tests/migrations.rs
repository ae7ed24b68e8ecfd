//! Both backends must ship the same migrations: the same versions under the same names, so
//! that a database moved between them (or a reader of either folder) sees one history.

#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    reason = "a test: a failed expectation must fail it"
)]

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};

/// The `migrations/` folder of the backend crate `name`, a sibling of this crate.
fn migrations_of(name: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("..")
        .join(name)
        .join("migrations")
}

/// The file names in `dir`.
fn file_names(dir: &Path) -> BTreeSet<String> {
    std::fs::read_dir(dir)
        .unwrap_or_else(|e| panic!("read {}: {e}", dir.display()))
        .map(|entry| {
            let entry = entry.expect("read a directory entry");
            entry
                .file_name()
                .into_string()
                .unwrap_or_else(|name| panic!("a file name that is not UTF-8: {name:?}"))
        })
        .collect()
}

#[test]
fn both_backends_have_migrations_of_the_same_names() {
    let postgres = file_names(&migrations_of("authara-store-postgres"));
    let sqlite = file_names(&migrations_of("authara-store-sqlite"));
    assert!(!postgres.is_empty(), "no PostgreSQL migrations found");
    let only_postgres: Vec<_> = postgres.difference(&sqlite).collect();
    let only_sqlite: Vec<_> = sqlite.difference(&postgres).collect();
    assert!(
        only_postgres.is_empty() && only_sqlite.is_empty(),
        "the backends' migrations differ: only PostgreSQL has {only_postgres:?}, \
         only SQLite has {only_sqlite:?}"
    );
}

#[test]
fn migration_names_are_versioned_sql_files_with_distinct_versions() {
    let names = file_names(&migrations_of("authara-store-postgres"));
    let mut versions = BTreeSet::new();
    for name in &names {
        let stem = name
            .strip_suffix(".sql")
            .unwrap_or_else(|| panic!("{name}: not a .sql file"));
        let (version, description) = stem
            .split_once('_')
            .unwrap_or_else(|| panic!("{name}: not <version>_<description>.sql"));
        assert!(!description.is_empty(), "{name}: no description");
        let version: u64 = version
            .parse()
            .unwrap_or_else(|_| panic!("{name}: the version is not a number"));
        assert!(
            versions.insert(version),
            "{name}: version {version} is used twice"
        );
    }
}
