/// The access log: one line per request in the original's logfmt
/// (`id= method= client-ip= url= backend= status= duration= agent= err=`).
/// Lines go through a `LogOutput`, so a slow standard error never stalls an
/// event loop.
public final class AccessLog: Sendable {
    public struct Entry: Sendable {
        public var id: String
        public var method: String
        public var clientIP: String
        public var url: String
        public var backend: String
        public var status: Int
        public var duration: Double
        public var agent: String
        public var error: String
    }

    /// Shared with the daemon's log lines by default, so that a single
    /// writer keeps lines of both whole on standard error.
    let output: LogOutput
    /// logfmt lines in text mode, one JSON object per line in json mode.
    let format: LogFormat

    public init(format: LogFormat = .text, output: LogOutput = .standardError) {
        self.format = format
        self.output = output
    }

    public func log(_ entry: Entry) {
        output.write((format == .json ? Self.json(entry) : Self.format(entry)) + "\n")
    }

    /// Waits until every line handed over so far is written.
    public func flush() { output.flush() }

    static func format(_ e: Entry) -> String {
        "id=\(e.id) method=\(e.method) client-ip=\(e.clientIP) url=\(quote(e.url)) backend=\(e.backend) status=\(e.status) duration=\(seconds(e.duration)) agent=\(quote(e.agent)) err=\(quote(e.error))"
    }

    /// Seconds with six decimals (as `%.6f`), without Foundation's formatter.
    static func seconds(_ value: Double) -> String {
        let micros = Int64((max(0, value) * 1e6).rounded())
        let fraction = String(micros % 1_000_000)
        return "\(micros / 1_000_000)." + String(repeating: "0", count: 6 - fraction.count) + fraction
    }

    /// The entry as one JSON object, with the logfmt line's keys.
    static func json(_ e: Entry) -> String {
        JSONLine.object([
            ("time", .string(ShuttleLogHandler.timestamp())), ("id", .string(e.id)), ("method", .string(e.method)),
            ("client-ip", .string(e.clientIP)), ("url", .string(e.url)), ("backend", .string(e.backend)),
            ("status", .number(String(e.status))), ("duration", .number(seconds(e.duration))),
            ("agent", .string(e.agent)), ("err", .string(e.error)),
        ])
    }

    /// logfmt quoting: bare when safe (an empty value too: `err=`), else in
    /// double quotes with escapes.
    static func quote(_ value: String) -> String {
        // ASCII without space, quote, '=' or line breaks: bare. (Checked on
        // bytes; anything beyond ASCII takes the careful look below.)
        if !value.utf8.contains(where: { $0 == 0x20 || $0 == 0x22 || $0 == 0x3D || (0x0A...0x0D).contains($0) || $0 >= 0x80 }) {
            return value
        }
        if !value.contains(where: { $0 == " " || $0 == "\"" || $0 == "=" || $0.isNewline }) {
            return value
        }
        var out = "\""
        for c in value {
            switch c {
            case "\"": out += "\\\""
            case "\\": out += "\\\\"
            case "\n": out += "\\n"
            case "\r": out += "\\r"
            default: out.append(c)
            }
        }
        return out + "\""
    }
}
