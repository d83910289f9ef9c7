//! Which command makes a GRUB fallback permanent. On the boot GRUB reached by falling
//! back (`boot_counter=-1`), the deployment order still names the failed deployment
//! first: the next boot would try it again. greenboot then runs the platform's rollback
//! (`bootc rollback`, `rpm-ostree rollback`), and so does bootgate: the first of them on
//! PATH, else the policy's `boot.fallback_command`.

/// The platform tools, in the order they are preferred: bootc manages the deployments
/// of a bootc host, where rpm-ostree may be present too but is not the one in charge.
pub const TOOLS: [&str; 2] = ["bootc", "rpm-ostree"];

/// The rollback to run: `Ok(None)` when this boot is no fallback (`boot_counter` other
/// than -1, or unset); `Err` when it is one and nothing can make it permanent.
/// `on_path` says whether a tool is on PATH; `configured` is `boot.fallback_command`.
pub fn rollback(
    boot_counter: Option<i64>,
    on_path: impl Fn(&str) -> bool,
    configured: Option<&[String]>,
) -> Result<Option<Vec<String>>, String> {
    if boot_counter != Some(-1) {
        return Ok(None);
    }
    if let Some(tool) = TOOLS.into_iter().find(|t| on_path(t)) {
        return Ok(Some(vec![tool.to_string(), "rollback".to_string()]));
    }
    match configured {
        Some(argv) => Ok(Some(argv.to_vec())),
        None => Err("neither bootc nor rpm-ostree is on PATH and the policy sets no boot.fallback_command".into()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn argv(words: &[&str]) -> Vec<String> {
        words.iter().map(|w| w.to_string()).collect()
    }

    #[test]
    fn bootc_then_rpm_ostree_then_the_configured_command_and_only_on_a_fallback() {
        let mine = argv(&["/usr/libexec/myupdater", "rollback"]);
        let has = |tools: &'static [&'static str]| move |t: &str| tools.contains(&t);
        type Case<'a> = (Option<i64>, &'static [&'static str], Option<&'a [String]>, Result<Option<Vec<String>>, ()>);
        let cases: [Case; 8] = [
            (Some(-1), &["bootc", "rpm-ostree"], Some(&mine), Ok(Some(argv(&["bootc", "rollback"])))),
            (Some(-1), &["rpm-ostree"], Some(&mine), Ok(Some(argv(&["rpm-ostree", "rollback"])))),
            (Some(-1), &[], Some(&mine), Ok(Some(mine.clone()))),
            (Some(-1), &[], None, Err(())),
            (Some(0), &["bootc"], Some(&mine), Ok(None)),
            (Some(2), &["bootc"], None, Ok(None)),
            (None, &["bootc"], Some(&mine), Ok(None)),
            (Some(-2), &["bootc"], None, Ok(None)),
        ];
        for (counter, tools, configured, want) in cases {
            let got = rollback(counter, has(tools), configured).map_err(drop);
            assert_eq!(got, want, "boot_counter {counter:?}, on PATH {tools:?}");
        }
        let why = rollback(Some(-1), |_| false, None).unwrap_err();
        assert!(why.contains("boot.fallback_command"), "{why}");
    }
}
