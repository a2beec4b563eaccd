import Foundation

/// The phone UI's static files (HTML, CSS, plain JavaScript; no build step), read from
/// the module's resources once at start.
struct PhoneUIFiles: Sendable {
    static let names = ["index.html", "app.js", "yardview.js", "style.css"]
    let files: [String: [UInt8]]

    init() {
        var files: [String: [UInt8]] = [:]
        for name in Self.names {
            let url = Bundle.module.resourceURL?.appendingPathComponent("PhoneUI").appendingPathComponent(name)
            if let url, let data = try? Data(contentsOf: url) { files[name] = Array(data) }
        }
        self.files = files
    }

    static func type(of name: String) -> String {
        if name.hasSuffix(".html") { return "text/html; charset=utf-8" }
        if name.hasSuffix(".js") { return "text/javascript; charset=utf-8" }
        if name.hasSuffix(".css") { return "text/css; charset=utf-8" }
        return "application/octet-stream"
    }
}
