import ShuttleModel

/// A client of the proxy: a TCP client doing request/response exchanges, an
/// HTTP client sending one request to a virtual host, or a UDP client
/// sending a few datagrams. Every one must end in a defined outcome.
struct SimClient {
    enum Kind: UInt8 { case tcp, http, udp }
    var kind: Kind
    var host: Int32
    var service: String
    var conn: Int32 = -1
    var open = true
    var established = false
    /// Exchanges still to do (TCP).
    var exchanges: Int32 = 1
    /// Response bytes still to come for the current exchange.
    var awaiting: Int = 0
    var finSent = false
    /// Met an injected fault: a missing answer is excused.
    var touched = false
    /// Why the proxy turned it away, as the proxy knows it.
    var refusal: String?
    /// The HTTP status it got.
    var status: Int32 = 0
    var hostHeader: String?
    var datagramsLeft: Int32 = 0
    var pendingDatagrams: Int32 = 0
    var port: Int = 0
}

/// One datagram a UDP client sent, and what became of it.
struct UDPRequest {
    enum Fate: UInt8 { case pending, answered, refused, lost }
    var client: Int32
    var fate: Fate = .pending
}

extension Simulation {
    /// How long a client waits for its whole exchange before it gives up.
    static let clientPatience = seconds(60)
    /// How long a UDP client waits for the reply to one datagram.
    static let datagramPatience = seconds(3)

    /// The config as a client knows it (the running one, or the last one
    /// persisted while the proxy is down).
    var knownConfig: Config { proxy.up ? proxy.registry.config : (disk ?? world.initialConfig) }

    /// Where a client reaches a service.
    mutating func listenAddress(_ service: ServiceConfig) -> String {
        if proxy.up, let (_, bound) = proxy.registry.listener(ofService: service.name) { return bound }
        return service.address
    }

    /// The services clients may reach, and on which port.
    struct ClientTargets {
        var tcp: [(name: String, port: Int)] = []
        var udp: [(name: String, port: Int)] = []
    }

    mutating func clientTargets() -> ClientTargets {
        var targets = ClientTargets()
        for service in knownConfig.services {
            let port = resolve(listenAddress(service)).map(portOf) ?? 1
            if service.network.hasPrefix("udp") {
                targets.udp.append((service.name, port))
            } else {
                targets.tcp.append((service.name, port))
            }
        }
        return targets
    }

    mutating func spawnClient() {
        guard !draining else { return }
        queue.push(.spawnClient, at: now + random.nanos(world.spawnInterval / 4...world.spawnInterval * 7 / 4))
        if targets == nil { targets = clientTargets() }
        let tcpServices = targets!.tcp
        let udpServices = targets!.udp
        var kind = SimClient.Kind.tcp
        switch random.weighted(world.mix) {
        case 1: kind = .http
        case 2: kind = udpServices.isEmpty ? .tcp : .udp
        default: kind = .tcp
        }
        let i = clients.count
        let host = firstClientHost + random.int(0...(world.clientHosts - 1))
        var client = SimClient(kind: kind, host: Int32(host), service: "")
        openClients += 1
        switch kind {
        case .tcp, .http:
            counts.connections += 1
            var port = World.httpPort
            if kind == .tcp {
                if let service = tcpServices.isEmpty ? nil : random.pick(tcpServices), !random.chance(0.02) {
                    client.service = service.name
                    port = service.port
                } else {
                    client.service = "(no service)"
                    port = random.pick(World.blueprints).ports[1]
                }
                client.exchanges = Int32(random.int(1...3))
            } else {
                client.hostHeader = random.pick(World.requestHosts)
                client.service = client.hostHeader!
            }
            clients.append(client)
            clients[i].conn = Int32(openTCP(.client(Int32(i)), from: host, to: Self.proxyHost, port: port, tag: Int32(i)))
            queue.push(.clientDeadline(Int32(i)), at: now + Self.clientPatience)
        case .udp:
            let service = random.pick(udpServices)
            client.service = service.name
            client.port = service.port
            client.datagramsLeft = Int32(random.int(1...3))
            clients.append(client)
            clientStep(i)
        }
    }

    mutating func clientSegment(_ i: Int, _ kind: Segment, bytes: Int) {
        guard clients[i].open else { return }
        switch kind {
        case .synAck:
            clients[i].established = true
            startExchange(i)
        case .data:
            if clients[i].kind == .http { return }
            clients[i].awaiting -= bytes
            if clients[i].awaiting <= 0 && clients[i].exchanges > 0 {
                clients[i].exchanges -= 1
                if clients[i].exchanges > 0 {
                    queue.push(.clientStep(Int32(i)), at: now + us(random.int(0...20_000)))
                } else {
                    clients[i].finSent = true
                    transmit(Int(clients[i].conn), toAcceptor: true, .fin)
                }
            }
        case .fin:
            tcp[Int(clients[i].conn)].initiatorClosed = true
            if clients[i].kind == .http {
                if clients[i].status != 0 {
                    end(i, "http \(clients[i].status)", needsFault: false)
                } else {
                    end(i, "http closed early", needsFault: true)
                }
            } else if clients[i].finSent && clients[i].exchanges == 0 {
                end(i, "tcp answered", needsFault: false)
            } else if let refusal = clients[i].refusal {
                end(i, "tcp refused: \(refusal)", needsFault: false)
            } else {
                end(i, "tcp closed early", needsFault: true)
            }
        case .rst:
            if clients[i].established {
                end(i, "\(clients[i].kind) reset", needsFault: true)
            } else {
                end(i, "\(clients[i].kind) refused: no listener", needsFault: false)
            }
        case .syn:
            break
        }
    }

    mutating func startExchange(_ i: Int) {
        guard clients[i].open else { return }
        let c = Int(clients[i].conn)
        if clients[i].kind == .http {
            transmit(c, toAcceptor: true, .data, bytes: random.int(100...600))
            return
        }
        let bytes = random.int(64...2048)
        clients[i].awaiting = 2 * bytes
        transmit(c, toAcceptor: true, .data, bytes: bytes)
    }

    mutating func clientStep(_ i: Int) {
        guard clients[i].open else { return }
        if clients[i].kind != .udp { return startExchange(i) }
        let r = requests.count
        requests.append(UDPRequest(client: Int32(i)))
        openRequests += 1
        counts.datagrams += 1
        clients[i].pendingDatagrams += 1
        clients[i].datagramsLeft -= 1
        let from = endpoint(Int(clients[i].host), 1024 + i % 60_000)
        queue.push(.datagramDeadline(Int32(r)), at: now + Self.datagramPatience)
        send(
            datagram: Datagram(
                kind: .toProxy, from: from, to: endpoint(Self.proxyHost, clients[i].port), bytes: Int32(random.int(40...512)),
                request: Int32(r), flow: -1))
        if clients[i].datagramsLeft > 0 {
            queue.push(.clientStep(Int32(i)), at: now + us(random.int(0...50_000)))
        }
    }

    mutating func clientDeadline(_ i: Int) {
        guard clients[i].open else { return }
        if clients[i].conn >= 0 { reset(Int(clients[i].conn), fromInitiator: true) }
        clientGaveUp(i, "timed out")
    }

    mutating func clientGaveUp(_ i: Int, _ why: String) {
        end(i, "\(clients[i].kind) \(why)", needsFault: true)
    }

    /// A client is done; an outcome that needs a fault to excuse it without one is a violation.
    mutating func end(_ i: Int, _ outcome: String, needsFault: Bool) {
        guard clients[i].open else { return }
        clients[i].open = false
        openClients -= 1
        tally(outcome)
        if needsFault && !clients[i].touched {
            let c = clients[i]
            fail(
                Violation(
                    .outcomes,
                    "client \(i) (\(c.kind) to \(c.service) from \(hosts[Int(c.host)].ip)): \(outcome), with no fault on its path"),
                inModelTrace: false)
        }
    }

    // MARK: Datagrams

    mutating func clientDatagram(_ d: Int) {
        resolve(request: Int(datagrams[d].request), .answered, "udp answered")
    }

    /// A datagram is dropped: lost (a fault) or refused (with a reason).
    mutating func drop(request r: Int, lost: Bool, _ reason: String) {
        if lost { touch(requests[r].client) }
        resolve(request: r, lost ? .lost : .refused, lost ? "udp lost: \(reason)" : "udp refused: \(reason)")
    }

    mutating func resolve(request r: Int, _ fate: UDPRequest.Fate, _ outcome: String) {
        guard requests[r].fate == .pending else { return }
        requests[r].fate = fate
        openRequests -= 1
        tally(outcome)
        let i = Int(requests[r].client)
        clients[i].pendingDatagrams -= 1
        if clients[i].pendingDatagrams == 0 && clients[i].datagramsLeft == 0 && clients[i].open {
            clients[i].open = false
            openClients -= 1
        }
    }

    mutating func datagramDeadline(_ r: Int) {
        guard requests[r].fate == .pending else { return }
        let i = Int(requests[r].client)
        if clients[i].touched {
            resolve(request: r, .lost, "udp lost: no reply")
        } else {
            resolve(request: r, .lost, "udp vanished")
            fail(
                Violation(
                    .outcomes,
                    "a datagram of client \(i) to \(clients[i].service) got no reply within \(Self.datagramPatience / 1_000_000) ms and no fault was on its path"
                ), inModelTrace: false)
        }
    }
}
