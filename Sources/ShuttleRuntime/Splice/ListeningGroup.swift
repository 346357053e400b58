#if os(Linux)
import CShuttleSplice
import Glibc

/// One listening port that several threads accept from, each on a socket
/// of its own: a SO_REUSEPORT group, whose sockets the kernel hands the new
/// connections to. No thread wakes for a client another one takes, and a
/// connection is served on the thread that accepted it.
///
/// SO_REUSEPORT alone would let another program of the same user that sets
/// it too bind the port without an error, and take a share of the clients.
/// Two guards keep a port in use an error and the clients ours:
/// - the port is first bound by a plain socket, which fails as usual when
///   anything listens there, and is held until the group listens;
/// - the group hands connections to its own sockets only
///   (`cshuttle_reuseport_confine`): a socket joining it later gets none.
enum ListeningGroup {
    /// `count` listening sockets (nonblocking, close-on-exec, TCP_NODELAY
    /// for the accepted ones to inherit) on `address`; with port 0, on the
    /// one the system chooses. One socket, without SO_REUSEPORT, for a
    /// count of 1.
    static func bind(_ address: SpliceAddress, sockets count: Int, backlog: Int32) throws -> [Int32] {
        precondition(count > 0, "a listening group needs a socket")
        let first = try boundSocket(address, reusePort: false)
        if count == 1 {
            guard listen(first, backlog) == 0 else { throw closing([first], call: "listen") }
            return [first]
        }
        defer { Glibc.close(first) }
        guard let chosen = SpliceAddress.local(of: first) else { throw closing([], call: "getsockname") }
        var sockets: [Int32] = []
        for _ in 0..<count {
            do {
                sockets.append(try boundSocket(chosen, reusePort: true))
            } catch {
                for fd in sockets { Glibc.close(fd) }
                throw error
            }
            guard listen(sockets.last!, backlog) == 0 else { throw closing(sockets, call: "listen") }
        }
        // An older kernel without the program still spreads the clients,
        // over whatever sockets the group has.
        _ = cshuttle_reuseport_confine(sockets[0], UInt32(count))
        return sockets
    }

    private static func boundSocket(_ address: SpliceAddress, reusePort: Bool) throws -> Int32 {
        let fd = cshuttle_tcp_socket(address.family)
        guard fd >= 0 else { throw SpliceError.system(describeErrno("socket", errno)) }
        var one: Int32 = 1
        let size = socklen_t(MemoryLayout<Int32>.size)
        _ = setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, size)
        if reusePort {
            guard setsockopt(fd, SOL_SOCKET, SO_REUSEPORT, &one, size) == 0 else {
                throw closing([fd], call: "setsockopt(SO_REUSEPORT)")
            }
        }
        // Accepted sockets inherit it: one system call per listener, not per client.
        _ = setsockopt(fd, Int32(IPPROTO_TCP), TCP_NODELAY, &one, size)
        guard address.withSockaddr({ Glibc.bind(fd, $0, $1) }) == 0 else {
            throw closing([fd], call: "bind(descriptor:ptr:bytes:)")
        }
        return fd
    }

    /// The error of `call`, after closing `fds`.
    private static func closing(_ fds: [Int32], call: String) -> SpliceError {
        let failure = errno
        for fd in fds { Glibc.close(fd) }
        return SpliceError.system(describeErrno(call, failure))
    }
}
#endif
