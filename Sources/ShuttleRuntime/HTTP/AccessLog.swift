import Dispatch
import Foundation
import NIOConcurrencyHelpers

/// The access log: one line per request in the original's logfmt
/// (`id= method= client-ip= url= backend= status= duration= agent= err=`).
/// Lines are handed to a queue of their own, so a slow standard error never
/// stalls an event loop; past a backlog, lines are dropped and counted.
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

    let queue = DispatchQueue(label: "shuttle.access-log")
    let backlog = NIOLockedValueBox(0)
    let dropped = NIOLockedValueBox(0)
    let write: @Sendable (String) -> Void
    /// logfmt lines in text mode, one JSON object per line in json mode.
    let format: LogFormat
    static let maximumBacklog = 10_000

    /// Writes to standard error by default.
    public init(
        format: LogFormat = .text, write: @escaping @Sendable (String) -> Void = { FileHandle.standardError.write(Data($0.utf8)) }
    ) {
        self.format = format
        self.write = write
    }

    public func log(_ entry: Entry) {
        let accepted = backlog.withLockedValue { count -> Bool in
            guard count < Self.maximumBacklog else { return false }
            count += 1
            return true
        }
        guard accepted else {
            dropped.withLockedValue { $0 += 1 }
            return
        }
        let line = format == .json ? Self.json(entry) : Self.format(entry)
        queue.async {
            self.write(line + "\n")
            self.backlog.withLockedValue { $0 -= 1 }
        }
    }

    /// Waits until every line handed over so far is written.
    public func flush() { queue.sync {} }

    static func format(_ e: Entry) -> String {
        "id=\(e.id) method=\(e.method) client-ip=\(e.clientIP) url=\(quote(e.url)) backend=\(e.backend) status=\(e.status) duration=\(String(format: "%.6f", e.duration)) agent=\(quote(e.agent)) err=\(quote(e.error))"
    }

    /// The entry as one JSON object, with the logfmt line's keys.
    static func json(_ e: Entry) -> String {
        let object: [String: Any] = [
            "time": ShuttleLogHandler.timestamp(), "id": e.id, "method": e.method, "client-ip": e.clientIP,
            "url": e.url, "backend": e.backend, "status": e.status, "duration": e.duration, "agent": e.agent,
            "err": e.error,
        ]
        let data = (try? JSONSerialization.data(withJSONObject: object, options: [.sortedKeys, .withoutEscapingSlashes])) ?? Data("{}".utf8)
        return String(decoding: data, as: UTF8.self)
    }

    /// logfmt quoting: bare when safe (an empty value too: `err=`), else in
    /// double quotes with escapes.
    static func quote(_ value: String) -> String {
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
