//! CI installs exactly what the tests use: every Debian package the test
//! support code names is in `.ci/packages`, which `.ci/run` installs.

mod support;

#[test]
fn ci_installs_every_package_the_tests_name() {
    let listed: Vec<&str> = include_str!("../.ci/packages")
        .lines()
        .map(str::trim)
        .filter(|l| !l.is_empty() && !l.starts_with('#'))
        .collect();
    let named = support::LAB_PACKAGES
        .iter()
        .chain(support::CLIENT_PACKAGES)
        .chain(support::DOC_PACKAGES)
        .chain(support::MONITORING_PACKAGES)
        .chain(support::TLS_PACKAGES)
        .chain(support::RECIPE_PACKAGES)
        .chain(support::peers::PEER_PACKAGES);
    let missing: Vec<&&str> = named.filter(|p| !listed.contains(p)).collect();
    assert!(missing.is_empty(), "add to .ci/packages: {missing:?}");
}

#[test]
fn ci_runs_the_readme_test_command() {
    let readme = include_str!("../README.md");
    let section = &readme[readme
        .find("## Run the tests")
        .expect("README has a test section")..];
    let command = section
        .lines()
        .skip_while(|l| !l.starts_with("```"))
        .nth(1)
        .expect("a command block");
    let ci = include_str!("../.ci/run");
    assert!(
        ci.lines().any(|l| l.trim() == command.trim()),
        "`.ci/run` does not run `{command}`"
    );
}
