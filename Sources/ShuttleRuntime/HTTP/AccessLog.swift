import ShuttleHTTPWire

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
        // Quoted where needed first (rarely: no copy when bare), so that
        // the line's length is known.
        let url = quote(e.url)
        let agent = quote(e.agent)
        let error = quote(e.error)
        // The keys and the numbers (status and duration: 20 digits each at
        // most, with a sign, a point and six decimals) take under 128.
        let room = 128 + e.id.utf8.count + e.method.utf8.count + e.clientIP.utf8.count + url.utf8.count
            + e.backend.utf8.count + agent.utf8.count + error.utf8.count
        ByteWriter.append(to: &out, room: room) { line in
            line.put(literal: "id=")
            line.put(e.id)
            line.put(literal: " method=")
            line.put(e.method)
            line.put(literal: " client-ip=")
            line.put(e.clientIP)
            line.put(literal: " url=")
            line.put(url)
            line.put(literal: " backend=")
            line.put(e.backend)
            line.put(literal: " status=")
            line.put(decimal: Int64(e.status))
            line.put(literal: " duration=")
            line.put(seconds: e.duration)
            line.put(literal: " agent=")
            line.put(agent)
            line.put(literal: " err=")
            line.put(error)
            line.put(0x0A)
        }
    }

    /// Seconds with six decimals (as `%.6f`), without Foundation's formatter.
    static func seconds(_ value: Double) -> String {
        var out: [UInt8] = []
        ByteWriter.append(to: &out, room: 40) { $0.put(seconds: value) }
        return String(decoding: out, as: UTF8.self)
    }

    /// ASCII without space, quote, '=' or line breaks.
    private static func isBare(_ value: String) -> Bool {
        func bare(_ byte: UInt8) -> Bool {
            !(byte == 0x20 || byte == 0x22 || byte == 0x3D || (0x0A...0x0D).contains(byte) || byte >= 0x80)
        }
        return value.utf8.withContiguousStorageIfAvailable { $0.allSatisfy(bare) } ?? value.utf8.allSatisfy(bare)
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

extension ByteWriter {
    /// Seconds with six decimals (as `%.6f`).
    mutating func put(seconds value: Double) {
        let micros = Int64((max(0, value) * 1e6).rounded())
        put(decimal: micros / 1_000_000)
        put(UInt8(ascii: "."))
        var digits = micros % 1_000_000
        var scale: Int64 = 100_000
        for _ in 0..<6 {
            put(UInt8(48 + digits / scale))
            digits %= scale
            scale /= 10
        }
    }
}
