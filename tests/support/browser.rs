//! A real browser for the UI tests: Debian's headless Chromium driven through `chromedriver`
//! over WebDriver (fantoccini). `scripts/test.sh` installs both; without them the browser tests
//! are skipped with a message, or fail when `SLUICE_REQUIRE_BROWSER=1`.

use fantoccini::{Client, ClientBuilder, Locator};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

/// A `chromedriver` process on a free port, killed on drop.
pub struct Driver {
    child: Child,
    pub url: String,
}

impl Drop for Driver {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn find_program(names: &[&str]) -> Option<PathBuf> {
    let path = std::env::var_os("PATH")?;
    names.iter().find_map(|name| {
        std::env::split_paths(&path)
            .map(|dir| dir.join(name))
            .find(|candidate| candidate.is_file())
    })
}

/// Starts chromedriver, or says why not: `None` skips the test unless a browser is required.
pub fn driver() -> Option<Driver> {
    let required = std::env::var("SLUICE_REQUIRE_BROWSER").is_ok_and(|value| value == "1");
    let (Some(chromedriver), Some(_)) = (
        find_program(&["chromedriver"]),
        find_program(&["chromium", "chromium-browser", "google-chrome"]),
    ) else {
        assert!(
            !required,
            "SLUICE_REQUIRE_BROWSER=1 but chromium or chromedriver is missing; install Debian's `chromium` and `chromium-driver`"
        );
        eprintln!(
            "skipped: no chromium and chromedriver (apt-get install chromium chromium-driver)"
        );
        return None;
    };
    let port = super::free_port();
    let child = Command::new(chromedriver)
        .arg(format!("--port={port}"))
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("start chromedriver");
    let url = format!("http://127.0.0.1:{port}");
    let status = format!("{url}/status");
    super::wait_for("chromedriver to answer", Duration::from_secs(30), || {
        reqwest::blocking::get(&status)
            .ok()
            .filter(|answer| answer.status().is_success())
            .map(|_| ())
    });
    Some(Driver { child, url })
}

/// A headless Chromium session with a fixed window size.
pub async fn browser(driver: &Driver) -> Client {
    let mut capabilities = serde_json::Map::new();
    capabilities.insert(
        "goog:chromeOptions".to_owned(),
        serde_json::json!({
            "args": ["--headless=new", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage", "--window-size=1400,1000"]
        }),
    );
    ClientBuilder::new(hyper_util::client::legacy::connect::HttpConnector::new())
        .capabilities(capabilities)
        .connect(&driver.url)
        .await
        .expect("a WebDriver session with chromium")
}

/// Polls `check` in the browser until it gives `Some`, failing after `limit` with `what`.
pub async fn eventually<T, F, Fut>(what: &str, limit: Duration, mut check: F) -> T
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = Option<T>>,
{
    let deadline = Instant::now() + limit;
    loop {
        if let Some(value) = check().await {
            return value;
        }
        assert!(Instant::now() < deadline, "timed out waiting for {what}");
        tokio::time::sleep(Duration::from_millis(25)).await;
    }
}

/// The text of the first element matching `css`, or `None` when there is none.
pub async fn text_of(client: &Client, css: &str) -> Option<String> {
    let element = client.find(Locator::Css(css)).await.ok()?;
    element.text().await.ok()
}

/// Saves a screenshot of the page as `name.png` under `dir` and checks it is not blank: more
/// than 1% of its pixels differ from the most common colour.
pub async fn screenshot(client: &Client, dir: &Path, name: &str) -> PathBuf {
    let png = client.screenshot().await.expect("a screenshot");
    let path = dir.join(format!("{name}.png"));
    std::fs::write(&path, &png).unwrap();
    let decoder = png::Decoder::new(std::io::Cursor::new(png));
    let mut reader = decoder.read_info().unwrap();
    let mut pixels = vec![0; reader.output_buffer_size().unwrap()];
    let info = reader.next_frame(&mut pixels).unwrap();
    let channels = info.color_type.samples();
    let mut counts = std::collections::HashMap::<&[u8], usize>::new();
    let pixels = &pixels[..info.buffer_size()];
    for pixel in pixels.chunks(channels) {
        *counts.entry(pixel).or_default() += 1;
    }
    let total = pixels.len() / channels;
    let most = counts.values().copied().max().unwrap_or(0);
    assert!(
        (total - most) * 100 > total,
        "{name}.png is blank: {most} of {total} pixels are one colour"
    );
    path
}

/// Basic accessibility checks on the page as rendered: every visible control has a label,
/// headings start at h1 and never skip a level, status badges' text keeps a contrast of at
/// least 4.5:1, and charts say what they show. The problems found, each naming the element.
pub async fn accessibility_problems(client: &Client) -> Vec<String> {
    const SCRIPT: &str = r#"
        const problems = [];
        for (const control of document.querySelectorAll('input, select, textarea')) {
            if (control.type === 'hidden') continue;
            const labelled = (control.labels && control.labels.length > 0)
                || control.getAttribute('aria-label') || control.getAttribute('aria-labelledby');
            if (!labelled) problems.push('control without a label: ' + control.outerHTML.slice(0, 120));
        }
        for (const button of document.querySelectorAll('button, a.button')) {
            if (!button.textContent.trim() && !button.getAttribute('aria-label'))
                problems.push('button without text: ' + button.outerHTML.slice(0, 120));
        }
        let previous = 0;
        for (const heading of document.querySelectorAll('h1, h2, h3, h4, h5, h6')) {
            const level = Number(heading.tagName[1]);
            if (previous === 0 && level !== 1) problems.push('the first heading is ' + heading.tagName);
            if (previous !== 0 && level > previous + 1)
                problems.push('heading level skipped: ' + heading.tagName + ' after h' + previous + ' (' + heading.textContent.trim().slice(0, 60) + ')');
            previous = level;
        }
        if (document.querySelectorAll('h1').length !== 1) problems.push('a page has exactly one h1');
        const channel = (value) => { value /= 255; return value <= 0.03928 ? value / 12.92 : Math.pow((value + 0.055) / 1.055, 2.4); };
        const luminance = (rgb) => { const [r, g, b] = rgb.match(/\d+(\.\d+)?/g).map(Number); return 0.2126 * channel(r) + 0.7152 * channel(g) + 0.0722 * channel(b); };
        for (const badge of document.querySelectorAll('.badge')) {
            const style = getComputedStyle(badge);
            const fore = luminance(style.color), back = luminance(style.backgroundColor);
            const ratio = (Math.max(fore, back) + 0.05) / (Math.min(fore, back) + 0.05);
            if (ratio < 4.5) problems.push('badge "' + badge.textContent.trim() + '" has contrast ' + ratio.toFixed(2));
        }
        for (const chart of document.querySelectorAll('svg')) {
            if (!chart.getAttribute('aria-label') && !chart.querySelector('title'))
                problems.push('a chart without a description');
        }
        if (!document.documentElement.getAttribute('lang')) problems.push('the page has no lang');
        return problems;
    "#;
    let answer = client
        .execute(SCRIPT, vec![])
        .await
        .expect("run the checks");
    serde_json::from_value(answer).unwrap_or_default()
}
