/// A backend host's server process: echoes twice the bytes of each request
/// (TCP) or a reply to each datagram (UDP) on its data port, and accepts
/// health-check connects on its check port. Faults make it crash, refuse,
/// answer slowly, stall, or flap its check port.
struct BackendServer {
    static let dataPort = 80
    static let checkPort = 81

    var host: Int32
    /// Time to handle one request.
    var processing: ClosedRange<UInt64>
    /// The process runs (a crash fault stops it).
    var up = true
    var crashes = 0
    /// Faults in force, counted so that overlapping ones heal properly.
    var refusing = 0
    var stalled = 0
    var slow = 0
    var slowDelay: UInt64 = 0
    var flapping = 0
    /// Connections accepted since the last crash (to reset them at the next).
    var accepted: [Int32] = []

    init(host: Int32, processing: ClosedRange<UInt64>) {
        self.host = host
        self.processing = processing
    }
}

extension Simulation {
    func server(ofHost host: Int) -> Int { host - 1 }

    /// How long the server of `host` takes for one request, nil when it stalls.
    mutating func serviceTime(_ s: Int, tag: Int32) -> UInt64? {
        let server = servers[s]
        if server.stalled > 0 {
            touch(tag)
            return nil
        }
        var time = random.nanos(server.processing)
        if server.slow > 0 {
            touch(tag)
            time += server.slowDelay
        }
        return time
    }

    mutating func serverSegment(_ c: Int, _ kind: Segment, bytes: Int) {
        let s = server(ofHost: Int(tcp[c].destination))
        switch kind {
        case .data:
            guard let time = serviceTime(s, tag: tcp[c].tag) else { return }
            tcp[c].serverPending += 1
            queue.push(.serverReply(conn: Int32(c), bytes: Int32(2 * bytes)), at: now + time)
        case .fin:
            if tcp[c].serverPending == 0 {
                tcp[c].acceptorClosed = true
                transmit(c, toAcceptor: false, .fin)
            } else {
                tcp[c].serverFinPending = true
            }
        case .syn, .synAck, .rst:
            break
        }
    }

    mutating func serverReply(_ c: Int, bytes: Int) {
        guard !tcp[c].acceptorClosed, servers[server(ofHost: Int(tcp[c].destination))].up else { return }
        transmit(c, toAcceptor: false, .data, bytes: bytes)
        tcp[c].serverPending -= 1
        if tcp[c].serverPending == 0 && tcp[c].serverFinPending {
            tcp[c].acceptorClosed = true
            transmit(c, toAcceptor: false, .fin)
        }
    }

    mutating func serverDatagram(_ d: Int) {
        let s = server(ofHost: hostOf(datagrams[d].to))
        let request = Int(datagrams[d].request)
        guard servers[s].up else { return drop(request: request, lost: true, "backend down") }
        guard let time = serviceTime(s, tag: requests[request].client) else {
            return drop(request: request, lost: true, "backend stalled")
        }
        queue.push(.serverDatagramReply(Int32(d)), at: now + time)
    }

    mutating func serverDatagramReply(_ d: Int) {
        let request = datagrams[d]
        guard servers[server(ofHost: hostOf(request.to))].up else {
            return drop(request: Int(request.request), lost: true, "backend down")
        }
        send(
            datagram: Datagram(
                kind: .fromBackend, from: request.to, to: request.from, bytes: request.bytes, request: request.request,
                flow: request.flow))
    }

    /// The server process of a backend host dies: its connections are reset.
    mutating func crashServer(_ s: Int) {
        servers[s].crashes += 1
        guard servers[s].up else { return }
        servers[s].up = false
        let accepted = servers[s].accepted
        servers[s].accepted = []
        for c in accepted.map(Int.init) where !tcp[c].acceptorClosed {
            touch(tcp[c].tag)
            reset(c, fromInitiator: false)
        }
    }

    mutating func restartServer(_ s: Int) {
        servers[s].crashes -= 1
        if servers[s].crashes == 0 { servers[s].up = true }
    }
}
