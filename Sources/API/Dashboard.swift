/// The dashboard served at `/`: a page, its script and its style sheet (`Sources/API/Dashboard/`),
/// compiled into the binary, loading nothing from elsewhere and built by no tool. It reads the REST
/// API with the key it is given (`/#key=…` or its sign-in form; kept in the tab's sessionStorage),
/// charts the error rate per service with the spikes marked, and lists top groups, clusters and
/// insights with their recommended actions. The chart element carries `data-chart-ready`,
/// `data-series` and `data-spikes` for automated checks (scripts/checks/check_dashboard.py).
enum Dashboard {
    /// Path, content type and bytes of each file. The page links the others by relative paths,
    /// so it works under any prefix a proxy puts in front.
    static let files: [(path: String, contentType: String, body: [UInt8])] = [
        ("/", "text/html; charset=utf-8", PackageResources.index_html),
        ("/dashboard/app.js", "text/javascript; charset=utf-8", PackageResources.app_js),
        ("/dashboard/style.css", "text/css; charset=utf-8", PackageResources.style_css),
    ]
}
