import Foundation

#if canImport(Glibc)
    import Glibc
    private let systemClose = Glibc.close
    private let systemSend = Glibc.send
    private let noSignal = Int32(MSG_NOSIGNAL)
#elseif canImport(Musl)
    import Musl
    private let systemClose = Musl.close
    private let systemSend = Musl.send
    private let noSignal = Int32(MSG_NOSIGNAL)
#elseif canImport(Darwin)
    import Darwin
    private let systemClose = Darwin.close
    private let systemSend = Darwin.send
    private let noSignal: Int32 = 0  // SO_NOSIGPIPE would be the way there
#endif

/// A blocking HTTP/1.1 client over one connection, for tests: it sends
/// exactly the bytes it is given (so a test can send garbage, pipeline two
/// requests or stream an endless body) and parses the answers. Every socket
/// call has a timeout, so a server that does not answer fails the test
/// instead of hanging it.
public final class RawHTTPClient {
    public struct Failure: Error, CustomStringConvertible {
        public var description: String
        public init(description: String) { self.description = description }
    }

    private var fd: Int32
    private var received: [UInt8] = []
    private var sawEOF = false

    /// Connects to `127.0.0.1:port`.
    public convenience init(port: Int, timeout: TimeInterval = 10) throws {
        var address = sockaddr_in()
        address.sin_family = sa_family_t(AF_INET)
        address.sin_port = in_port_t(UInt16(port).bigEndian)
        address.sin_addr.s_addr = inet_addr("127.0.0.1")
        try self.init(family: AF_INET, timeout: timeout) { fd in
            withUnsafePointer(to: &address) {
                $0.withMemoryRebound(to: sockaddr.self, capacity: 1) {
                    connect(fd, $0, socklen_t(MemoryLayout<sockaddr_in>.size))
                }
            }
        }
    }

    /// Connects to a unix domain socket.
    public convenience init(unixPath: String, timeout: TimeInterval = 10) throws {
        var address = try Self.unixAddress(unixPath)
        try self.init(family: AF_UNIX, timeout: timeout) { fd in
            withUnsafePointer(to: &address) {
                $0.withMemoryRebound(to: sockaddr.self, capacity: 1) {
                    connect(fd, $0, socklen_t(MemoryLayout<sockaddr_un>.size))
                }
            }
        }
    }

    private static func unixAddress(_ path: String) throws -> sockaddr_un {
        var address = sockaddr_un()
        address.sun_family = sa_family_t(AF_UNIX)
        let bytes = Array(path.utf8)
        let capacity = MemoryLayout.size(ofValue: address.sun_path)
        guard bytes.count < capacity else { throw Failure(description: "socket path too long") }
        withUnsafeMutableBytes(of: &address.sun_path) { raw in
            raw.copyBytes(from: bytes)
            raw[bytes.count] = 0
        }
        return address
    }

    /// Leaves a socket file at `path` that nobody listens on, as a daemon
    /// that crashed does.
    public static func leaveStaleSocket(at path: String) throws {
        var address = try unixAddress(path)
        #if canImport(Darwin)
            let fd = socket(AF_UNIX, SOCK_STREAM, 0)
        #else
            let fd = socket(AF_UNIX, Int32(SOCK_STREAM.rawValue), 0)
        #endif
        guard fd >= 0 else { throw Failure(description: "socket: errno \(errno)") }
        defer { _ = systemClose(fd) }
        let result = withUnsafePointer(to: &address) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) {
                bind(fd, $0, socklen_t(MemoryLayout<sockaddr_un>.size))
            }
        }
        guard result == 0 else { throw Failure(description: "bind: errno \(errno)") }
    }

    private init(family: Int32, timeout: TimeInterval, connectTo: (Int32) -> Int32) throws {
        #if canImport(Darwin)
            let type = SOCK_STREAM
        #else
            let type = Int32(SOCK_STREAM.rawValue)
        #endif
        fd = socket(family, type, 0)
        guard fd >= 0 else { throw Failure(description: "socket: errno \(errno)") }
        var limit = timeval(tv_sec: Int(timeout), tv_usec: 0)
        setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &limit, socklen_t(MemoryLayout<timeval>.size))
        setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &limit, socklen_t(MemoryLayout<timeval>.size))
        guard connectTo(fd) == 0 else {
            let error = errno
            close()
            throw Failure(description: "connect: errno \(error)")
        }
    }

    deinit { close() }

    public func close() {
        if fd >= 0 {
            _ = systemClose(fd)
            fd = -1
        }
    }

    // MARK: Sending

    public func send(_ text: String) throws { try send(Array(text.utf8)) }

    public func send(_ bytes: [UInt8]) throws {
        var offset = 0
        while offset < bytes.count {
            let n = bytes[offset...].withUnsafeBytes { raw in
                systemSend(fd, raw.baseAddress, raw.count, noSignal)
            }
            guard n > 0 else { throw Failure(description: "send: errno \(errno)") }
            offset += n
        }
    }

    /// Sends a request with a `Content-Length` body and reads its answer.
    public func request(
        _ method: String, _ target: String, body: String? = nil, headers: [(String, String)] = []
    ) throws -> RawHTTPResponse {
        try send(Self.requestText(method, target, body: body, headers: headers))
        return try readResponse()
    }

    public static func requestText(
        _ method: String, _ target: String, body: String? = nil, headers: [(String, String)] = []
    ) -> String {
        var text = "\(method) \(target) HTTP/1.1\r\nHost: 127.0.0.1\r\n"
        for (name, value) in headers { text += "\(name): \(value)\r\n" }
        if let body { text += "Content-Type: application/json\r\nContent-Length: \(body.utf8.count)\r\n" }
        text += "\r\n"
        if let body { text += body }
        return text
    }

    // MARK: Receiving

    /// Reads one final answer (skipping `100 Continue`); its body is
    /// `Content-Length` bytes long, or none for an answer to HEAD.
    public func readResponse(toHEAD: Bool = false) throws -> RawHTTPResponse {
        while true {
            let end = try readUntilHeaderEnd()
            let headText = String(decoding: received[..<end], as: UTF8.self)
            received.removeFirst(end + 4)
            var lines = headText.components(separatedBy: "\r\n")
            let statusLine = lines.removeFirst().split(separator: " ", maxSplits: 2)
            guard statusLine.count >= 2, let status = Int(statusLine[1]) else {
                throw Failure(description: "bad status line in \(headText)")
            }
            let headers: [(String, String)] = lines.compactMap { line in
                guard let colon = line.firstIndex(of: ":") else { return nil }
                return (
                    String(line[..<colon]),
                    line[line.index(after: colon)...].trimmingCharacters(in: .whitespaces)
                )
            }
            if (100..<200).contains(status) { continue }
            let declared = headers.first { $0.0.lowercased() == "content-length" }.flatMap { Int($0.1) } ?? 0
            let length = toHEAD ? 0 : declared
            while received.count < length {
                guard try fill() else { throw Failure(description: "connection closed inside a body") }
            }
            let body = Array(received[..<length])
            received.removeFirst(length)
            return RawHTTPResponse(status: status, headers: headers, body: body)
        }
    }

    /// Whether the server closed the connection: reads until EOF, a reset or
    /// the timeout (false), dropping what arrives.
    public func isClosedByServer() -> Bool {
        received.removeAll()
        while true {
            do {
                guard try fill() else { return true }
                received.removeAll()
            } catch {
                return errno == ECONNRESET
            }
        }
    }

    private func readUntilHeaderEnd() throws -> Int {
        let marker: [UInt8] = [13, 10, 13, 10]
        var searchFrom = 0
        while true {
            if received.count >= 4 {
                for i in searchFrom...(received.count - 4) where received[i..<(i + 4)].elementsEqual(marker) {
                    return i
                }
                searchFrom = received.count - 3
            }
            guard try fill() else { throw Failure(description: "connection closed before an answer") }
        }
    }

    /// Reads more bytes; false at EOF.
    private func fill() throws -> Bool {
        if sawEOF { return false }
        var chunk = [UInt8](repeating: 0, count: 65536)
        let n = chunk.withUnsafeMutableBytes { recv(fd, $0.baseAddress, $0.count, 0) }
        if n == 0 {
            sawEOF = true
            return false
        }
        guard n > 0 else { throw Failure(description: "recv: errno \(errno)") }
        received += chunk[..<n]
        return true
    }
}

/// An answer as the test client read it.
public struct RawHTTPResponse {
    public var status: Int
    public var headers: [(String, String)]
    public var body: [UInt8]
    /// Trailers of a chunked answer.
    public var trailers: [(String, String)] = []
    /// Whether the body came chunked.
    public var wasChunked = false

    /// The first value of a header, by case-insensitive name.
    public func header(_ name: String) -> String? { values(name).first }

    /// Every value of a header, by case-insensitive name.
    public func values(_ name: String) -> [String] {
        headers.filter { $0.0.lowercased() == name.lowercased() }.map(\.1)
    }

    public var text: String { String(decoding: body, as: UTF8.self) }

    /// The body as a JSON value (objects are `[String: Any]`, arrays `[Any]`).
    public func json() throws -> Any {
        try JSONSerialization.jsonObject(with: Data(body), options: [.fragmentsAllowed])
    }

    public func object() throws -> [String: Any] {
        guard let object = try json() as? [String: Any] else {
            throw RawHTTPClient.Failure(description: "not a JSON object: \(text)")
        }
        return object
    }

    /// `problems` of an error body as `path: reason` strings.
    public func problems() throws -> [String] {
        let list = try object()["problems"] as? [[String: Any]] ?? []
        return list.map { "\($0["path"] as? String ?? "?"): \($0["reason"] as? String ?? "?")" }
    }
}
