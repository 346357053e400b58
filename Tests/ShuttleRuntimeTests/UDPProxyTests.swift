import Foundation
import NIOCore
import NIOPosix
import ShuttleModel
import ShuttleRuntime
import ShuttleTestSupport
import Testing

#if canImport(Glibc)
import Glibc
#endif

/// A UDP service on a free port of 127.0.0.1 with `echo` as its one backend.
func echoService(_ name: String, _ echo: any Channel) -> ServiceConfig {
    ServiceConfig(
        name: name, address: "127.0.0.1:0", network: "udp",
        backends: [backend("echo", port: echo.localAddress!.port!, network: "udp")])
}

/// A proxy on one UDP relay with one service in front of an echo backend.
struct EchoProxy {
    let proxy: ProxyHarness
    let echo: any Channel
    let service: ServiceConfig
    /// The service's port.
    let port: Int

    static func start(
        _ name: String, relay: UDPRelay, flowLimit: Int? = nil, configure: (inout ServiceConfig) -> Void = { _ in }
    ) async throws -> EchoProxy {
        let proxy = ProxyHarness(udpRelay: relay, udpFlowLimit: flowLimit)
        let echo = try await TestUDPBackend.start(name: "echo", group: proxy.group)
        var service = echoService(name, echo)
        configure(&service)
        try await proxy.apply(Config(services: [service]))
        return EchoProxy(proxy: proxy, echo: echo, service: service, port: try proxy.port(of: name))
    }

    func client() async throws -> UDPClient { try await UDPClient(group: proxy.group) }

    func close(_ clients: [UDPClient]) async throws {
        for client in clients { try await client.channel.close() }
        try await echo.close()
        await proxy.shutdown()
    }
}

/// What both UDP relays (epoll and NIO) must do alike, over real sockets.
@Suite("UDP proxying over real sockets")
struct UDPProxyTests {
    @Test("a datagram's reply comes back to its client; two clients keep their own flows", arguments: UDPRelay.allCases)
    func requestReplyWithFlows(relay: UDPRelay) async throws {
        let proxy = ProxyHarness(udpRelay: relay)
        let one = try await TestUDPBackend.start(name: "one", group: proxy.group)
        let two = try await TestUDPBackend.start(name: "two", group: proxy.group)
        try await proxy.apply(
            Config(services: [
                ServiceConfig(
                    name: "dns", address: "127.0.0.1:0", network: "udp",
                    backends: [
                        backend("one", port: one.localAddress!.port!, network: "udp"),
                        backend("two", port: two.localAddress!.port!, network: "udp"),
                    ])
            ]))
        let port = try proxy.port(of: "dns")
        let first = try await UDPClient(group: proxy.group)
        let second = try await UDPClient(group: proxy.group)
        try await first.send("ping1", to: port)
        #expect(await first.waitForReplies(1))
        try await second.send("ping2", to: port)
        #expect(await second.waitForReplies(1))
        let firstBackend = try #require(first.replies.withLockedValue { $0.first }?.split(separator: ":").first)
        let secondBackend = try #require(second.replies.withLockedValue { $0.first }?.split(separator: ":").first)
        #expect(firstBackend != secondBackend, "round robin puts the second flow on the other backend")
        // Each flow sticks to its backend.
        for i in 0..<3 {
            try await first.send("again\(i)", to: port)
            try await second.send("again\(i)", to: port)
        }
        #expect(await eventually { first.replies.withLockedValue { $0.count } == 4 && second.replies.withLockedValue { $0.count } == 4 })
        #expect(first.replies.withLockedValue { $0 }.allSatisfy { $0.hasPrefix(firstBackend + ":") })
        #expect(second.replies.withLockedValue { $0 }.allSatisfy { $0.hasPrefix(secondBackend + ":") })
        #expect(first.replies.withLockedValue { $0 }.first == "\(firstBackend):ping1")
        #expect(proxy.stats("dns")?.connections == 2)
        try await first.channel.close()
        try await second.channel.close()
        try await one.close()
        try await two.close()
        await proxy.shutdown()
    }

    @Test(
        "datagrams up to the largest UDP payload go through whole, both ways",
        arguments: UDPRelay.allCases, [1, 2_048, 2_049, 9_000, 65_000])
    func largeDatagrams(relay: UDPRelay, size: Int) async throws {
        let fixture = try await EchoProxy.start("big", relay: relay)
        let port = fixture.port
        let client = try await fixture.client()
        // Distinct bytes along the datagram, so that a cut or a shifted slice shows.
        let payload = String((0..<size).map { Character(UnicodeScalar(UInt8(97 + $0 % 26))) })
        // The first datagram waits while the flow's socket is set up; the second goes straight through.
        try await client.send(payload, to: port)
        #expect(await client.waitForReplies(1))
        try await client.send(payload, to: port)
        #expect(await client.waitForReplies(2))
        for reply in client.replies.withLockedValue({ $0 }) {
            #expect(reply.utf8.count == size + "echo:".utf8.count)
            #expect(reply == "echo:" + payload)
        }
        try await fixture.close([client])
    }

    @Test("a flow idle past client_timeout ends and is counted; the client's next datagram starts a new one", arguments: UDPRelay.allCases)
    func idleFlowsEnd(relay: UDPRelay) async throws {
        let fixture = try await EchoProxy.start("idle", relay: relay) { $0.clientTimeout = 300 }
        let (proxy, port) = (fixture.proxy, fixture.port)
        let client = try await fixture.client()
        try await client.send("12345", to: port)
        #expect(await client.waitForReplies(1))
        #expect(proxy.stats("idle")?.connections == 1)
        #expect(await eventually { proxy.driver.read { $0.openConnections } == 0 })
        let stats = proxy.stats("idle")
        #expect(stats?.active == 0)
        #expect(stats?.sent == 5)
        #expect(stats?.received == "echo:12345".utf8.count)
        try await client.send("again", to: port)
        #expect(await client.waitForReplies(2))
        #expect(proxy.stats("idle")?.connections == 2)
        try await fixture.close([client])
    }

    @Test("a backend named by host name is resolved; datagrams sent meanwhile are held, not lost", arguments: UDPRelay.allCases)
    func backendByName(relay: UDPRelay) async throws {
        let fixture = try await EchoProxy.start("named", relay: relay) { service in
            service.network = "udp4"
            service.backends[0].network = "udp4"
            service.backends[0].address = service.backends[0].address.replacingOccurrences(of: "127.0.0.1", with: "localhost")
        }
        #expect(fixture.service.backends[0].address.hasPrefix("localhost:"))
        let port = fixture.port
        let client = try await fixture.client()
        for i in 0..<3 { try await client.send("n\(i)", to: port) }
        #expect(await client.waitForReplies(3))
        #expect(Set(client.replies.withLockedValue { $0 }) == ["echo:n0", "echo:n1", "echo:n2"])
        try await fixture.close([client])
    }

    @Test("removing a UDP service frees its port and ends its flows", arguments: UDPRelay.allCases)
    func removal(relay: UDPRelay) async throws {
        let fixture = try await EchoProxy.start("gone", relay: relay)
        let (proxy, port) = (fixture.proxy, fixture.port)
        let client = try await fixture.client()
        try await client.send("one", to: port)
        #expect(await client.waitForReplies(1))
        try await proxy.apply(.removeService(name: "gone"))
        #expect(await eventually { proxy.driver.read { $0.openConnections } == 0 })
        // The port is free again: a service can take it at once.
        var again = fixture.service
        again.name = "back"
        again.address = "127.0.0.1:\(port)"
        try await rebinding {
            let reply = try await proxy.driver.submit(.updateConfig(ConfigUpdate(Config(services: [again])))).get()
            guard case .applied = reply else { throw HarnessError.notApplied(reply) }
        }
        try await client.send("two", to: port)
        #expect(await client.waitForReplies(2))
        try await fixture.close([client])
    }

    @Test("many clients with datagrams in flight each get back exactly their own replies", arguments: UDPRelay.allCases)
    func manyClientsInFlight(relay: UDPRelay) async throws {
        // Flows must not idle out (30 s by default) on a slow machine: each
        // client keeps the one flow the count below expects.
        let fixture = try await EchoProxy.start("busy", relay: relay) { $0.clientTimeout = 600_000 }
        let (proxy, port) = (fixture.proxy, fixture.port)
        var clients: [UDPClient] = []
        for _ in 0..<6 { clients.append(try await fixture.client()) }
        // Bursts of 8 per client, all clients at once: the relay reads and
        // sends them in batches that mix flows.
        let bursts = 5
        let window = 8
        for burst in 0..<bursts {
            for (c, client) in clients.enumerated() {
                for j in 0..<window { try await client.send("c\(c)-\(burst * window + j)", to: port) }
            }
            let expected = (burst + 1) * window
            #expect(await eventually { clients.allSatisfy { $0.replies.withLockedValue { $0.count } >= expected } })
        }
        for (c, client) in clients.enumerated() {
            let replies = client.replies.withLockedValue { $0 }
            #expect(Set(replies) == Set((0..<(bursts * window)).map { "echo:c\(c)-\($0)" }))
            #expect(replies.count == bursts * window)
        }
        #expect(proxy.stats("busy")?.connections == clients.count)
        try await fixture.close(clients)
    }

    @Test("a UDP port another socket holds is refused, even one that set SO_REUSEADDR", arguments: UDPRelay.allCases)
    func portInUse(relay: UDPRelay) async throws {
        let proxy = ProxyHarness(udpRelay: relay)
        let holder = socket(AF_INET, Int32(SOCK_DGRAM.rawValue), 0)
        defer { close(holder) }
        var one: Int32 = 1
        _ = setsockopt(holder, SOL_SOCKET, SO_REUSEADDR, &one, socklen_t(MemoryLayout<Int32>.size))
        var address = sockaddr_in()
        address.sin_family = sa_family_t(AF_INET)
        address.sin_addr.s_addr = inet_addr("127.0.0.1")
        var length = socklen_t(MemoryLayout<sockaddr_in>.size)
        let bound = withUnsafeMutablePointer(to: &address) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { bind(holder, $0, length) == 0 && getsockname(holder, $0, &length) == 0 }
        }
        #expect(bound)
        let port = Int(UInt16(bigEndian: address.sin_port))
        let update = Config(services: [
            ServiceConfig(
                name: "taken", address: "127.0.0.1:\(port)", network: "udp",
                backends: [backend("a", port: 9, network: "udp")])
        ])
        let reply = try await proxy.driver.submit(.updateConfig(ConfigUpdate(update))).get()
        guard case .bindFailed(let service, _, _, _) = reply else {
            Issue.record("expected a bind failure, got \(reply)")
            await proxy.shutdown()
            return
        }
        #expect(service == "taken")
        await proxy.shutdown()
    }

    @Test("a service's socket asks for a 4 MiB receive buffer, which the kernel grants up to rmem_max", arguments: UDPRelay.allCases)
    func receiveBuffer(relay: UDPRelay) async throws {
        let fixture = try await EchoProxy.start("buffered", relay: relay)
        let fd = try #require(Self.udpSocket(boundTo: fixture.port), "no socket of this process is bound to the service's port")
        var granted: Int32 = 0
        var length = socklen_t(MemoryLayout<Int32>.size)
        #expect(getsockopt(fd, SOL_SOCKET, SO_RCVBUF, &granted, &length) == 0)
        // The kernel doubles what it grants, for its own bookkeeping.
        if let text = try? String(contentsOfFile: "/proc/sys/net/core/rmem_max", encoding: .utf8),
            let ceiling = Int32(text.trimmingCharacters(in: .whitespacesAndNewlines))
        {
            #expect(granted == 2 * min(4 << 20, ceiling))
        } else {
            #expect(granted > 212_992)
        }
        try await fixture.close([])
    }

    /// This process's UDP socket bound to 127.0.0.1:`port` (the service's).
    static func udpSocket(boundTo port: Int) -> Int32? {
        let descriptors = (try? FileManager.default.contentsOfDirectory(atPath: "/proc/self/fd")) ?? []
        for name in descriptors {
            guard let fd = Int32(name) else { continue }
            var type: Int32 = 0
            var typeLength = socklen_t(MemoryLayout<Int32>.size)
            guard getsockopt(fd, SOL_SOCKET, SO_TYPE, &type, &typeLength) == 0, type == Int32(SOCK_DGRAM.rawValue) else {
                continue
            }
            var address = sockaddr_in()
            var length = socklen_t(MemoryLayout<sockaddr_in>.size)
            let named = withUnsafeMutablePointer(to: &address) {
                $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { getsockname(fd, $0, &length) == 0 }
            }
            if named, address.sin_family == sa_family_t(AF_INET), Int(UInt16(bigEndian: address.sin_port)) == port {
                return fd
            }
        }
        return nil
    }

    @Test("past the flow limit, a new client's flow ends the least recently active one", arguments: UDPRelay.allCases)
    func flowLimit(relay: UDPRelay) async throws {
        let fixture = try await EchoProxy.start("full", relay: relay, flowLimit: 3)
        let (proxy, port) = (fixture.proxy, fixture.port)
        var clients: [UDPClient] = []
        for _ in 0..<4 { clients.append(try await fixture.client()) }
        // Each exchange is sent again if a datagram is lost on a busy machine.
        for (i, client) in clients.prefix(3).enumerated() {
            #expect(try await client.exchange("first \(i)", to: port))
        }
        // Client 0 is active again: client 1 is now the least recently active.
        try await Task.sleep(for: .milliseconds(20))
        #expect(try await clients[0].exchange("again", to: port))
        try await Task.sleep(for: .milliseconds(20))
        #expect(try await clients[3].exchange("fourth", to: port))
        #expect(await eventually { proxy.driver.read { $0.openConnections } == 3 })
        #expect(proxy.stats("full")?.connections == 4)
        // Client 0 kept its flow; client 1 gets a new one.
        #expect(try await clients[0].exchange("kept", to: port))
        #expect(proxy.stats("full")?.connections == 4)
        #expect(try await clients[1].exchange("back", to: port))
        #expect(proxy.stats("full")?.connections == 5)
        try await fixture.close(clients)
    }
}
