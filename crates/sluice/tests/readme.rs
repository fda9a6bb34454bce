//! The README's type-mapping table is the one the code generates, so the two cannot drift.

#[test]
fn readme_type_mapping_matches_code() {
    let readme = std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/../../README.md")).unwrap();
    let table = sluice_core::types::mapping_table_markdown();
    assert!(readme.contains(&table), "README.md's type mapping table is out of date; replace it with:\n\n{table}");
}
