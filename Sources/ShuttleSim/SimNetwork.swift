import ShuttleModel

/// A simulated machine: the proxy's, a backend's or a client's.
struct SimHost {
    enum Role { case proxy, backend, client }
    var ip: String
    var role: Role
    /// Hashed once: what consistent hashing sees of its clients.
    var key: BalanceKey
    /// One-way latency of its link to the proxy's host.
    var latency: UInt64
    var jitter: UInt64
    /// While the clock is before this, its link to the proxy is cut.
    var partitionedUntil: UInt64 = 0
    /// Datagrams lost on its link to the proxy while a loss fault lasts.
    var loss: Double = 0
}

/// Who holds one end of a connection.
enum Party: Equatable {
    case none
    /// A workload client.
    case client(Int32)
    /// The proxy's side facing a client, by proxied connection.
    case front(Int32)
    /// The proxy's side facing a backend, by proxied connection.
    case back(Int32)
    /// A health check's connect, by probe.
    case probe(Int32)
    /// A backend server, by host.
    case server(Int32)
    /// A backend's health-check port.
    case check
}

/// A TCP-like connection: established by a handshake, then segments in
/// order each way, half-closed by FIN, torn down by RST.
struct TCPConnection {
    var initiator: Party
    var acceptor: Party = .none
    var source: Int32
    var destination: Int32
    var port: Int32
    /// The client whose traffic this is (for blaming faults), or -1.
    var tag: Int32
    var established = false
    /// An end that reset, timed out or closed ignores what still arrives.
    var initiatorClosed = false
    var acceptorClosed = false
    /// Arrival times so far each way: segments never overtake each other.
    var toAcceptorAt: UInt64 = 0
    var toInitiatorAt: UInt64 = 0
    /// A backend server's responses not sent yet, and a FIN it holds until they are.
    var serverPending: Int32 = 0
    var serverFinPending = false
}

/// A datagram in flight.
struct Datagram {
    enum Kind: UInt8 { case toProxy, toBackend, fromBackend, toClient }
    var kind: Kind
    /// Endpoints (host << 16 | port).
    var from: Int
    var to: Int
    var bytes: Int32
    /// The client datagram it carries or answers.
    var request: Int32
    /// The proxy's flow it belongs to, or -1.
    var flow: Int32
}

@inline(__always) func endpoint(_ host: Int, _ port: Int) -> Int { host << 16 | port }
@inline(__always) func hostOf(_ endpoint: Int) -> Int { endpoint >> 16 }
@inline(__always) func portOf(_ endpoint: Int) -> Int { endpoint & 0xffff }

extension Simulation {
    static let proxyHost = 0

    mutating func buildNetwork() {
        hosts.append(SimHost(ip: World.proxyIP, role: .proxy, key: BalanceKey(World.proxyIP), latency: 0, jitter: 0))
        for k in 1...world.backendHosts {
            let ip = "10.0.1.\(k)"
            hosts.append(
                SimHost(
                    ip: ip, role: .backend, key: BalanceKey(ip), latency: us(random.int(50...1500)),
                    jitter: us(random.int(0...300))))
            servers.append(BackendServer(host: Int32(hosts.count - 1), processing: us(random.int(50...500))...us(random.int(600...3000))))
        }
        for k in 1...world.clientHosts {
            let ip = "10.0.2.\(k)"
            hosts.append(
                SimHost(
                    ip: ip, role: .client, key: BalanceKey(ip), latency: us(random.int(20...400)),
                    jitter: us(random.int(0...100))))
        }
    }

    var firstClientHost: Int { 1 + world.backendHosts }

    /// The endpoint of an `ip:port` string, if a host of the world has that ip.
    mutating func resolve(_ address: String) -> Int? {
        if let known = endpoints[address] { return known }
        guard case .success(let parsed) = HostPort.parse(address, listening: false) else { return nil }
        guard let host = hosts.firstIndex(where: { $0.ip == parsed.hostString }) else { return nil }
        let e = endpoint(host, parsed.port)
        endpoints[address] = e
        return e
    }

    /// The host at the far end of a link (every link touches the proxy's host).
    @inline(__always) func link(_ a: Int, _ b: Int) -> Int { a == Self.proxyHost ? b : a }

    @inline(__always) mutating func delay(_ host: Int) -> UInt64 {
        let h = hosts[host]
        return h.jitter == 0 ? h.latency : h.latency + random.next() % h.jitter
    }

    /// The client behind `tag` met a fault: its failure to get an answer is excused.
    @inline(__always) mutating func touch(_ tag: Int32) {
        if tag >= 0 { clients[Int(tag)].touched = true }
    }

    // MARK: TCP

    /// Starts a connection: the SYN is on its way.
    mutating func openTCP(_ initiator: Party, from source: Int, to destination: Int, port: Int, tag: Int32) -> Int {
        let c = tcp.count
        tcp.append(
            TCPConnection(
                initiator: initiator, source: Int32(source), destination: Int32(destination), port: Int32(port), tag: tag))
        transmit(c, toAcceptor: true, .syn)
        return c
    }

    /// Sends a segment; over a cut link it waits for the link to heal, as
    /// retransmissions would.
    mutating func transmit(_ c: Int, toAcceptor: Bool, _ kind: Segment, bytes: Int = 0) {
        let source = Int(toAcceptor ? tcp[c].source : tcp[c].destination)
        let destination = Int(toAcceptor ? tcp[c].destination : tcp[c].source)
        let far = link(source, destination)
        var at = now + delay(far)
        let cut = hosts[far].partitionedUntil
        if cut > now {
            at = max(at, cut + delay(far))
            touch(tcp[c].tag)
        }
        if toAcceptor {
            at = max(at, tcp[c].toAcceptorAt)
            tcp[c].toAcceptorAt = at
        } else {
            at = max(at, tcp[c].toInitiatorAt)
            tcp[c].toInitiatorAt = at
        }
        queue.push(.segment(conn: Int32(c), toAcceptor: toAcceptor, kind: kind, bytes: Int32(bytes)), at: at)
    }

    /// Closes one end at once with a reset to the other.
    mutating func reset(_ c: Int, fromInitiator: Bool) {
        if fromInitiator {
            guard !tcp[c].initiatorClosed else { return }
            tcp[c].initiatorClosed = true
        } else {
            guard !tcp[c].acceptorClosed else { return }
            tcp[c].acceptorClosed = true
        }
        transmit(c, toAcceptor: fromInitiator, .rst)
    }

    mutating func deliver(_ c: Int, toAcceptor: Bool, _ kind: Segment, bytes: Int) {
        if toAcceptor {
            guard !tcp[c].acceptorClosed else { return }
            if kind == .syn { return accept(c) }
            if kind == .rst { tcp[c].acceptorClosed = true }
        } else {
            if tcp[c].initiatorClosed {
                // A late handshake for a connect given up on: reset it.
                if kind == .synAck { transmit(c, toAcceptor: true, .rst) }
                return
            }
            if kind == .synAck { tcp[c].established = true }
            if kind == .rst { tcp[c].initiatorClosed = true }
        }
        switch toAcceptor ? tcp[c].acceptor : tcp[c].initiator {
        case .client(let i): clientSegment(Int(i), kind, bytes: bytes)
        case .front(let p): frontSegment(Int(p), kind, bytes: bytes)
        case .back(let p): backSegment(Int(p), kind, bytes: bytes)
        case .probe(let p): probeSegment(Int(p), kind)
        case .server: serverSegment(c, kind, bytes: bytes)
        case .check, .none: break
        }
    }

    /// A SYN arrives: whoever listens on the port takes it, else a reset.
    mutating func accept(_ c: Int) {
        let host = Int(tcp[c].destination)
        let port = Int(tcp[c].port)
        var party = Party.none
        switch hosts[host].role {
        case .proxy:
            if proxy.up {
                if port == World.httpPort {
                    party = .front(Int32(frontAccepted(c, listener: nil)))
                } else if let listener = proxy.ports[port << 1] {
                    party = .front(Int32(frontAccepted(c, listener: listener)))
                }
            } else {
                touch(tcp[c].tag)
            }
        case .backend:
            let server = servers[host - 1]
            if !server.up || (port == BackendServer.dataPort && server.refusing > 0) {
                touch(tcp[c].tag)
            } else if port == BackendServer.dataPort {
                party = .server(Int32(host))
                servers[host - 1].accepted.append(Int32(c))
            } else if port == BackendServer.checkPort {
                if server.flapping == 0 || random.chance(0.5) { party = .check }
            }
        case .client:
            break
        }
        if party == .none {
            tcp[c].acceptorClosed = true
            transmit(c, toAcceptor: false, .rst)
            return
        }
        tcp[c].acceptor = party
        transmit(c, toAcceptor: false, .synAck)
        if case .front(let p) = party { frontStarted(Int(p)) }
    }

    mutating func connectTimedOut(_ c: Int) {
        guard !tcp[c].established, !tcp[c].initiatorClosed else { return }
        tcp[c].initiatorClosed = true
        switch tcp[c].initiator {
        case .back(let p): backConnectFailed(Int(p), reason: "connect timed out")
        case .probe(let p): probeDone(Int(p), passed: false)
        case .client(let i): clientGaveUp(Int(i), "connect timed out")
        default: break
        }
    }

    // MARK: Datagrams

    /// Sends a datagram; a cut or lossy link drops it (a fault).
    mutating func send(datagram: Datagram) {
        let far = link(hostOf(datagram.from), hostOf(datagram.to))
        let h = hosts[far]
        if h.partitionedUntil > now || (h.loss > 0 && random.chance(h.loss)) {
            drop(request: Int(datagram.request), lost: true, "lost on the link")
            return
        }
        let d = datagrams.count
        datagrams.append(datagram)
        queue.push(.datagram(Int32(d)), at: now + delay(far))
    }

    mutating func deliver(datagram d: Int) {
        switch datagrams[d].kind {
        case .toProxy: proxyDatagram(d)
        case .toBackend: serverDatagram(d)
        case .fromBackend: flowReply(d)
        case .toClient: clientDatagram(d)
        }
    }
}
