//! `bbhv manuals`: a man page for every verb the command line has, and
//! completions that know the verbs, both generated from the same parser.

mod common;

use common::*;

#[test]
fn every_visible_verb_has_a_man_page_and_a_completion() {
    let dir = tempfile::tempdir().unwrap();
    let mandir = dir.path().join("man");
    let man = mandir.join("man1");
    let share = dir.path().join("share");
    let output = bbhv(&[
        "manuals",
        "--man",
        mandir.to_str().unwrap(),
        "--completions",
        share.to_str().unwrap(),
    ]);
    assert!(output.status.success(), "{output:?}");

    // The verbs as `bbhv --help` lists them: the man pages must follow the parser.
    let help = String::from_utf8(bbhv(&["--help"]).stdout).unwrap();
    let verbs: Vec<&str> = help
        .split("Commands:")
        .nth(1)
        .unwrap()
        .lines()
        .skip(1)
        .take_while(|line| !line.trim().is_empty())
        .filter_map(|line| line.split_whitespace().next())
        .filter(|verb| *verb != "help")
        .collect();
    assert!(
        verbs.contains(&"status") && verbs.contains(&"doctor"),
        "{verbs:?}"
    );
    assert!(
        !verbs.contains(&"manuals"),
        "the hidden verb is listed: {verbs:?}"
    );
    for verb in &verbs {
        let page = std::fs::read_to_string(man.join(format!("bbhv-{verb}.1")))
            .unwrap_or_else(|e| panic!("no man page for {verb}: {e}"));
        assert!(page.starts_with(".ie"), "{verb}: not roff: {page:.80}");
        let title = format!(
            ".TH bbhv-{verb} 1  \"bbhv {}\" \"BitBuilder Hypervisor\"",
            env!("CARGO_PKG_VERSION")
        );
        assert!(
            page.contains(&title),
            "{verb}: no title line {title:?}: {page:.200}"
        );
    }
    let top = std::fs::read_to_string(man.join("bbhv.1")).unwrap();
    assert!(
        top.contains("bbhv\\-status(1)"),
        "bbhv.1 does not list bbhv-status(1)"
    );
    assert!(
        !man.join("bbhv-manuals.1").exists(),
        "a page for the hidden verb"
    );

    for generator in ["tenant-generator", "mount-generator"] {
        let page = std::fs::read_to_string(mandir.join(format!("man8/{generator}.8"))).unwrap();
        assert!(
            page.contains(&format!(".TH {generator} 8")),
            "{generator}: {page:.200}"
        );
        for section in [
            ".SH SYNOPSIS",
            ".SH ENVIRONMENT",
            ".SH FILES",
            "BITBUILDER_CURRENT",
        ] {
            assert!(page.contains(section), "{generator}.8 lacks {section}");
        }
        // man(1) renders it without a warning (groff -ww: every warning).
        let rendered = std::process::Command::new("groff")
            .args(["-man", "-Tutf8", "-ww", "-z"])
            .stdin(std::fs::File::open(mandir.join(format!("man8/{generator}.8"))).unwrap())
            .output();
        if let Ok(out) = rendered {
            assert!(
                out.status.success() && out.stderr.is_empty(),
                "{generator}.8: {out:?}"
            );
        }
    }

    for (file, verb_syntax) in [
        ("bash-completion/completions/bbhv", "status"),
        ("zsh/vendor-completions/_bbhv", "#compdef bbhv"),
        ("fish/vendor_completions.d/bbhv.fish", "-a \"status\""),
    ] {
        let script = std::fs::read_to_string(share.join(file)).unwrap();
        for verb in &verbs {
            assert!(script.contains(verb), "{file} lacks {verb}");
        }
        assert!(script.contains(verb_syntax), "{file}: no {verb_syntax:?}");
    }
}

#[test]
fn manuals_without_a_destination_is_an_error() {
    let output = bbhv(&["manuals"]);
    assert_eq!(output.status.code(), Some(1));
    let stderr = String::from_utf8(output.stderr).unwrap();
    assert!(
        stderr.contains("--man MANDIR, --completions DATADIR"),
        "{stderr}"
    );
}
