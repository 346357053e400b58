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
    static let maximumBacklog = 10_000

    /// Writes to standard error by default.
    public init(write: @escaping @Sendable (String) -> Void = { FileHandle.standardError.write(Data($0.utf8)) }) {
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
        queue.async {
            self.write(Self.format(entry) + "\n")
            self.backlog.withLockedValue { $0 -= 1 }
        }
    }

    /// Waits until every line handed over so far is written.
    public func flush() { queue.sync {} }

    static func format(_ e: Entry) -> String {
        "id=\(e.id) method=\(e.method) client-ip=\(e.clientIP) url=\(quote(e.url)) backend=\(e.backend) status=\(e.status) duration=\(String(format: "%.6f", e.duration)) agent=\(quote(e.agent)) err=\(quote(e.error))"
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
