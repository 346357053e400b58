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
        output.write(format == .json ? Self.json(entry) + "\n" : Self.line(entry))
    }

    /// Waits until every line handed over so far is written.
    public func flush() { output.flush() }

    /// The logfmt line with its newline, built in one string (interpolation
    /// and the pieces of the duration made six strings per request).
    static func line(_ e: Entry) -> String {
        var out = ""
        out.reserveCapacity(128 + e.url.utf8.count + e.agent.utf8.count + e.error.utf8.count)
        out += "id="
        out += e.id
        out += " method="
        out += e.method
        out += " client-ip="
        out += e.clientIP
        out += " url="
        appendQuoted(e.url, to: &out)
        out += " backend="
        out += e.backend
        out += " status="
        out += String(e.status)
        out += " duration="
        appendSeconds(e.duration, to: &out)
        out += " agent="
        appendQuoted(e.agent, to: &out)
        out += " err="
        appendQuoted(e.error, to: &out)
        out += "\n"
        return out
    }

    /// Seconds with six decimals (as `%.6f`), without Foundation's formatter.
    static func seconds(_ value: Double) -> String {
        var out = ""
        appendSeconds(value, to: &out)
        return out
    }

    static func appendSeconds(_ value: Double, to out: inout String) {
        let micros = Int64((max(0, value) * 1e6).rounded())
        out += String(micros / 1_000_000)
        out += "."
        var digits = micros % 1_000_000
        var scale: Int64 = 100_000
        for _ in 0..<6 {
            out.unicodeScalars.append(Unicode.Scalar(UInt8(48 + digits / scale)))
            digits %= scale
            scale /= 10
        }
    }

    static func appendQuoted(_ value: String, to out: inout String) {
        if isBare(value) {
            out += value
        } else {
            out += quote(value)
        }
    }

    /// ASCII without space, quote, '=' or line breaks.
    private static func isBare(_ value: String) -> Bool {
        !value.utf8.contains(where: { $0 == 0x20 || $0 == 0x22 || $0 == 0x3D || (0x0A...0x0D).contains($0) || $0 >= 0x80 })
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
