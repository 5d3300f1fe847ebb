//! Live pages against a real server: the `/events` stream is Server-Sent Events, and a browser
//! holding one open does not hold the server's shutdown (the streams end when it stops).

mod support;

use std::io::Read;
use std::time::Duration;
use support::*;

#[test]
fn an_open_live_page_does_not_hold_the_server_s_shutdown() {
    let repo = TestRepo::new();
    repo.commit(&[("README.md", "hello\n")], "first");
    let data = tempfile::tempdir().unwrap();
    let mut server = Server::start(data.path(), repo.path());
    let client = reqwest::blocking::Client::builder().build().unwrap();
    let mut events = client.get(server.url("/events")).send().unwrap();
    assert_eq!(events.status(), 200);
    assert_eq!(
        events.headers()["content-type"].to_str().unwrap(),
        "text/event-stream"
    );
    let pid = server.child.id().to_string();
    let sent = std::process::Command::new("kill")
        .args(["-TERM", &pid])
        .status()
        .unwrap();
    assert!(sent.success());
    // Without the streams ending, the server would wait out its 30 s grace for them.
    let status = wait_for("the server to exit", Duration::from_secs(10), || {
        server.child.try_wait().unwrap()
    });
    assert!(status.success(), "{status:?}");
    let mut rest = String::new();
    let _ = events.read_to_string(&mut rest);
}
