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
        if format == .json {
            output.write(Self.json(entry) + "\n")
        } else {
            output.append { Self.appendLine(entry, to: &$0) }
        }
    }

    /// Waits until every line handed over so far is written.
    public func flush() { output.flush() }

    /// The logfmt line with its newline.
    static func line(_ e: Entry) -> String {
        var bytes: [UInt8] = []
        appendLine(e, to: &bytes)
        return String(decoding: bytes, as: UTF8.self)
    }

    /// Appends the logfmt line with its newline, as bytes: built straight
    /// into the log's pending output, with no string of its own (appending
    /// to a String checks its encoding at every piece, a sixth of the
    /// line's cost).
    static func appendLine(_ e: Entry, to out: inout [UInt8]) {
        append("id=", to: &out)
        append(e.id, to: &out)
        append(" method=", to: &out)
        append(e.method, to: &out)
        append(" client-ip=", to: &out)
        append(e.clientIP, to: &out)
        append(" url=", to: &out)
        appendQuoted(e.url, to: &out)
        append(" backend=", to: &out)
        append(e.backend, to: &out)
        append(" status=", to: &out)
        appendDecimal(Int64(e.status), to: &out)
        append(" duration=", to: &out)
        appendSeconds(e.duration, to: &out)
        append(" agent=", to: &out)
        appendQuoted(e.agent, to: &out)
        append(" err=", to: &out)
        appendQuoted(e.error, to: &out)
        out.append(0x0A)
    }

    /// Seconds with six decimals (as `%.6f`), without Foundation's formatter.
    static func seconds(_ value: Double) -> String {
        var out: [UInt8] = []
        appendSeconds(value, to: &out)
        return String(decoding: out, as: UTF8.self)
    }

    static func appendSeconds(_ value: Double, to out: inout [UInt8]) {
        let micros = Int64((max(0, value) * 1e6).rounded())
        appendDecimal(micros / 1_000_000, to: &out)
        out.append(UInt8(ascii: "."))
        var digits = micros % 1_000_000
        var scale: Int64 = 100_000
        for _ in 0..<6 {
            out.append(UInt8(48 + digits / scale))
            digits %= scale
            scale /= 10
        }
    }

    static func appendDecimal(_ value: Int64, to out: inout [UInt8]) {
        if value < 0 { out.append(UInt8(ascii: "-")) }
        var rest = value.magnitude
        var scale: UInt64 = 1
        while scale <= rest / 10 { scale *= 10 }
        while scale > 0 {
            out.append(UInt8(48 + rest / scale))
            rest %= scale
            scale /= 10
        }
    }

    private static func append(_ text: StaticString, to out: inout [UInt8]) {
        text.withUTF8Buffer { out.append(contentsOf: $0) }
    }

    private static func append(_ text: String, to out: inout [UInt8]) {
        var text = text
        text.withUTF8 { out.append(contentsOf: $0) }
    }

    static func appendQuoted(_ value: String, to out: inout [UInt8]) {
        if isBare(value) {
            append(value, to: &out)
        } else {
            append(quote(value), to: &out)
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
        // Checked on bytes first; anything beyond ASCII takes the careful look.
        if isBare(value) || !value.contains(where: { $0 == " " || $0 == "\"" || $0 == "=" || $0.isNewline }) {
            return value
        }
        var out = "\""
        // By scalar: a CR LF pair is one Character, which matched neither
        // escape and went out raw, a line break inside the line.
        for scalar in value.unicodeScalars {
            switch scalar {
            case "\"": out += "\\\""
            case "\\": out += "\\\\"
            case "\n": out += "\\n"
            case "\r": out += "\\r"
            default: out.unicodeScalars.append(scalar)
            }
        }
        return out + "\""
    }
}
