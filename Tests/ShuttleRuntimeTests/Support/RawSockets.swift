import Foundation
#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

/// Blocking sockets on 127.0.0.1 for tests that need exact control of a
/// connection's ends (half-close, a full close right after sending, a slow
/// reader). Every call is bounded: reads and writes time out after 30 s.
enum RawSocket {
    struct Failure: Error, CustomStringConvertible {
        var description: String
    }

    static func check(_ result: Int32, _ call: String) throws {
        if result < 0 { throw Failure(description: "\(call): errno \(errno)") }
    }

    private static func makeSocket() throws -> Int32 {
        #if canImport(Glibc)
        let fd = socket(AF_INET, Int32(SOCK_STREAM.rawValue), 0)
        #else
        let fd = socket(AF_INET, SOCK_STREAM, 0)
        #endif
        try check(fd, "socket")
        var timeout = timeval(tv_sec: 30, tv_usec: 0)
        _ = setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &timeout, socklen_t(MemoryLayout<timeval>.size))
        _ = setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &timeout, socklen_t(MemoryLayout<timeval>.size))
        return fd
    }

    private static func loopback(port: Int) -> sockaddr_in {
        var address = sockaddr_in()
        address.sin_family = sa_family_t(AF_INET)
        address.sin_port = in_port_t(UInt16(port).bigEndian)
        address.sin_addr.s_addr = inet_addr("127.0.0.1")
        return address
    }

    /// A listening socket on a free port, or on `port`; returns it and the
    /// port. With `reusePort`, it sets SO_REUSEADDR and SO_REUSEPORT as
    /// HAProxy does, to share the port with other such sockets of the user.
    static func listen(port: Int = 0, reusePort: Bool = false, backlog: Int32 = 128) throws -> (fd: Int32, port: Int) {
        let fd = try makeSocket()
        if reusePort {
            var one: Int32 = 1
            _ = setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, socklen_t(MemoryLayout<Int32>.size))
            _ = setsockopt(fd, SOL_SOCKET, SO_REUSEPORT, &one, socklen_t(MemoryLayout<Int32>.size))
        }
        var address = loopback(port: port)
        try check(withUnsafePointer(to: &address) { $0.withMemoryRebound(to: sockaddr.self, capacity: 1) {
            bind(fd, $0, socklen_t(MemoryLayout<sockaddr_in>.size)) } }, "bind")
        #if canImport(Glibc)
        try check(Glibc.listen(fd, backlog), "listen")
        #else
        try check(Darwin.listen(fd, backlog), "listen")
        #endif
        var bound = sockaddr_in()
        var length = socklen_t(MemoryLayout<sockaddr_in>.size)
        try check(withUnsafeMutablePointer(to: &bound) { $0.withMemoryRebound(to: sockaddr.self, capacity: 1) {
            getsockname(fd, $0, &length) } }, "getsockname")
        return (fd, Int(UInt16(bigEndian: bound.sin_port)))
    }

    /// Waits (up to 30 s) for a client on a listening socket.
    static func accept(_ listener: Int32) throws -> Int32 {
        var poller = pollfd(fd: listener, events: Int16(POLLIN), revents: 0)
        guard poll(&poller, 1, 30_000) == 1 else { throw Failure(description: "accept: no client in 30 s") }
        #if canImport(Glibc)
        let fd = Glibc.accept(listener, nil, nil)
        #else
        let fd = Darwin.accept(listener, nil, nil)
        #endif
        try check(fd, "accept")
        var timeout = timeval(tv_sec: 30, tv_usec: 0)
        _ = setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &timeout, socklen_t(MemoryLayout<timeval>.size))
        _ = setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &timeout, socklen_t(MemoryLayout<timeval>.size))
        return fd
    }

    /// A listener a connect to hangs on: its accept queue (backlog 0 holds
    /// one connection) is filled by `filler`, so further SYNs are dropped.
    /// Close both when done.
    static func hangingListener() throws -> HangingListener {
        let server = try listen(backlog: 0)
        do {
            return HangingListener(fd: server.fd, port: server.port, filler: try connect(port: server.port))
        } catch {
            close(server.fd)
            throw error
        }
    }

    static func connect(port: Int) throws -> Int32 {
        let fd = try makeSocket()
        var address = loopback(port: port)
        let status = withUnsafePointer(to: &address) { $0.withMemoryRebound(to: sockaddr.self, capacity: 1) {
            #if canImport(Glibc)
            Glibc.connect(fd, $0, socklen_t(MemoryLayout<sockaddr_in>.size))
            #else
            Darwin.connect(fd, $0, socklen_t(MemoryLayout<sockaddr_in>.size))
            #endif
        } }
        if status < 0 {
            let failure = errno
            close(fd)
            throw Failure(description: "connect: errno \(failure)")
        }
        return fd
    }

    static func send(_ fd: Int32, _ bytes: [UInt8]) throws {
        var offset = 0
        while offset < bytes.count {
            let n = bytes[offset...].withUnsafeBytes { write(fd, $0.baseAddress, $0.count) }
            if n < 0 && errno == EINTR { continue }
            guard n > 0 else { throw Failure(description: "write: errno \(errno)") }
            offset += n
        }
    }

    static func send(_ fd: Int32, _ text: String) throws { try send(fd, Array(text.utf8)) }

    /// One read of up to `size` bytes; empty at the end of input.
    static func read(_ fd: Int32, size: Int = 64 * 1024) throws -> [UInt8] {
        var buffer = [UInt8](repeating: 0, count: size)
        while true {
            #if canImport(Glibc)
            let n = buffer.withUnsafeMutableBytes { Glibc.read(fd, $0.baseAddress, size) }
            #else
            let n = buffer.withUnsafeMutableBytes { Darwin.read(fd, $0.baseAddress, size) }
            #endif
            if n < 0 && errno == EINTR { continue }
            guard n >= 0 else { throw Failure(description: "read: errno \(errno)") }
            return Array(buffer[..<n])
        }
    }

    /// Everything until the end of input.
    static func readToEnd(_ fd: Int32) throws -> [UInt8] {
        var all: [UInt8] = []
        while true {
            let chunk = try read(fd)
            if chunk.isEmpty { return all }
            all += chunk
        }
    }

    static func shutdownWrite(_ fd: Int32) {
        _ = shutdown(fd, Int32(SHUT_WR))
    }
}

/// Runs blocking work on a thread of its own, so that the test's task pool
/// is not held up.
func onThread<T: Sendable>(_ body: @escaping @Sendable () throws -> T) async throws -> T {
    try await withCheckedThrowingContinuation { continuation in
        let thread = Thread {
            continuation.resume(with: Result { try body() })
        }
        thread.start()
    }
}

/// A listening socket whose accept queue is full (see `RawSocket.hangingListener`).
struct HangingListener: Sendable {
    let fd: Int32
    let port: Int
    /// The connection that fills the queue.
    let filler: Int32

    func close() {
        #if canImport(Glibc)
        _ = Glibc.close(filler)
        _ = Glibc.close(fd)
        #else
        _ = Darwin.close(filler)
        _ = Darwin.close(fd)
        #endif
    }
}
