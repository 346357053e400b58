import Foundation
import NIOConcurrencyHelpers
import NIOCore
import NIOPosix
import ShuttleModel
import ShuttleRuntime
import ShuttleTestSupport
import Testing

#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

/// What both TCP relays (splice and NIO) must do alike, over real sockets.
@Suite("TCP relays: half-close, no loss, backpressure, timeouts, live removal, many clients")
struct TCPRelayTests {
    @Test("a backend that half-closes: the client gets its last bytes and the end, and can still send", arguments: TCPRelay.allCases)
    func halfCloseFromBackend(relay: TCPRelay) async throws {
        let server = try RawSocket.listen()
        defer { close(server.fd) }
        let (proxy, port) = try await proxyWithService("h", relay: relay, backendPort: server.port)
        let backendSide = Task {
            try await onThread { () throws -> [UInt8] in
                let fd = try RawSocket.accept(server.fd)
                defer { close(fd) }
                try RawSocket.send(fd, "bye")
                RawSocket.shutdownWrite(fd)
                return try RawSocket.readToEnd(fd)
            }
        }
        let fromBackend = try await onThread { () throws -> [UInt8] in
            let fd = try RawSocket.connect(port: port)
            defer { close(fd) }
            let all = try RawSocket.readToEnd(fd)
            try RawSocket.send(fd, "still here")
            RawSocket.shutdownWrite(fd)
            return all
        }
        #expect(String(decoding: fromBackend, as: UTF8.self) == "bye")
        #expect(String(decoding: try await backendSide.value, as: UTF8.self) == "still here")
        #expect(await eventually { proxy.stats("h")?.active == 0 && proxy.stats("h")?.connections == 1 })
        #expect(proxy.stats("h")?.sent == 10)
        #expect(proxy.stats("h")?.received == 3)
        await proxy.shutdown()
    }

    @Test("a client that half-closes: the backend gets its bytes and the end, and can still answer", arguments: TCPRelay.allCases)
    func halfCloseFromClient(relay: TCPRelay) async throws {
        let server = try RawSocket.listen()
        defer { close(server.fd) }
        let (proxy, port) = try await proxyWithService("h", relay: relay, backendPort: server.port)
        let backendSide = Task {
            try await onThread { () throws -> [UInt8] in
                let fd = try RawSocket.accept(server.fd)
                defer { close(fd) }
                let question = try RawSocket.readToEnd(fd)
                try RawSocket.send(fd, "answer to " + String(decoding: question, as: UTF8.self))
                return question
            }
        }
        let answer = try await onThread { () throws -> [UInt8] in
            let fd = try RawSocket.connect(port: port)
            defer { close(fd) }
            try RawSocket.send(fd, "question")
            RawSocket.shutdownWrite(fd)
            return try RawSocket.readToEnd(fd)
        }
        #expect(String(decoding: try await backendSide.value, as: UTF8.self) == "question")
        #expect(String(decoding: answer, as: UTF8.self) == "answer to question")
        #expect(await eventually { proxy.stats("h")?.active == 0 })
        await proxy.shutdown()
    }

    @Test("a client that sends and closes at once loses none of its bytes", arguments: TCPRelay.allCases)
    func dataThenImmediateClose(relay: TCPRelay) async throws {
        let server = try RawSocket.listen()
        defer { close(server.fd) }
        let (proxy, port) = try await proxyWithService("d", relay: relay, backendPort: server.port)
        let payload = (0..<100_000).map { UInt8(truncatingIfNeeded: $0 % 251) }
        let rounds = 20
        let backendSide = Task {
            try await onThread { () throws -> [Int] in
                var sizes: [Int] = []
                for _ in 0..<rounds {
                    let fd = try RawSocket.accept(server.fd)
                    let received = try RawSocket.readToEnd(fd)
                    close(fd)
                    sizes.append(received == payload ? received.count : -received.count)
                }
                return sizes
            }
        }
        try await onThread {
            for _ in 0..<rounds {
                let fd = try RawSocket.connect(port: port)
                try RawSocket.send(fd, payload)
                close(fd)
            }
        }
        #expect(try await backendSide.value == Array(repeating: payload.count, count: rounds))
        #expect(await eventually { proxy.stats("d")?.active == 0 && proxy.stats("d")?.sent == rounds * payload.count })
        await proxy.shutdown()
    }

    @Test("64 MiB to a client that first reads nothing, then slowly: all arrive, the proxy holds little", arguments: TCPRelay.allCases)
    func bulkToSlowReader(relay: TCPRelay) async throws {
        let server = try RawSocket.listen()
        defer { close(server.fd) }
        let (proxy, port) = try await proxyWithService("bulk", relay: relay, backendPort: server.port)
        let total = 64 * 1024 * 1024
        let written = NIOLockedValueBox(0)
        let backendSide = Task {
            try await onThread {
                let fd = try RawSocket.accept(server.fd)
                defer { close(fd) }
                let chunk = (0..<(256 * 1024)).map { UInt8(truncatingIfNeeded: $0 % 251) }
                var sent = 0
                while sent < total {
                    try RawSocket.send(fd, chunk)
                    sent += chunk.count
                    written.withLockedValue { $0 = sent }
                }
            }
        }
        let client = try RawSocket.connect(port: port)
        // Reads nothing until the backend stalls.
        let stalledAt = try await writesStalled(written)
        #expect(stalledAt < 48 * 1024 * 1024, "backend wrote \(stalledAt) bytes to a client that reads nothing")
        // Then reads all of it, slowly at first.
        let (count, intact) = try await onThread { () throws -> (Int, Bool) in
            var count = 0
            var intact = true
            var reads = 0
            while true {
                let chunk = try RawSocket.read(client, size: 16 * 1024)
                if chunk.isEmpty || count + chunk.count >= total {
                    count += chunk.count
                    return (count, intact)
                }
                for (offset, byte) in chunk.enumerated() where byte != UInt8(truncatingIfNeeded: ((count + offset) % (256 * 1024)) % 251) {
                    intact = false
                    break
                }
                count += chunk.count
                reads += 1
                if reads < 200 { usleep(1000) }
            }
        }
        close(client)
        #expect(count == total)
        #expect(intact)
        try await backendSide.value
        #expect(await eventually { proxy.stats("bulk")?.received == total })
        await proxy.shutdown()
    }

    @Test("a backend silent past server_timeout is closed, and so is its client", arguments: TCPRelay.allCases)
    func serverTimeout(relay: TCPRelay) async throws {
        let server = try RawSocket.listen()
        defer { close(server.fd) }
        let (proxy, port) = try await proxyWithService("quiet", relay: relay, backendPort: server.port) { $0.serverTimeout = 300 }
        let backendSide = Task {
            try await onThread { () throws -> [UInt8] in
                let fd = try RawSocket.accept(server.fd)
                defer { close(fd) }
                return try RawSocket.readToEnd(fd)
            }
        }
        let client = try await TCPClient.connect(port: port, group: proxy.group)
        #expect(await client.waitForClose())
        #expect(try await backendSide.value.isEmpty)
        #expect(await eventually { proxy.stats("quiet")?.active == 0 && proxy.stats("quiet")?.connections == 1 })
        await proxy.shutdown()
    }

    @Test("a backend that never answers the connect is given up after connect_timeout", arguments: TCPRelay.allCases)
    func connectTimeout(relay: TCPRelay) async throws {
        let (proxy, server) = try await proxyToHangingBackend("slow", relay: relay, connectTimeout: 300)
        defer { server.close() }
        let client = try await TCPClient.connect(port: try proxy.port(of: "slow"), group: proxy.group)
        #expect(await client.waitForClose())
        #expect(await eventually { (proxy.driver.read { $0.stats(service: "slow", backend: "a")?.errors } ?? 0) >= 1 })
        #expect(await eventually { proxy.driver.read { $0.openConnections } == 0 })
        await proxy.shutdown()
    }

    @Test("a client that resets while its backend is being connected is let go when the attempt ends", arguments: TCPRelay.allCases)
    func clientResetDuringConnect(relay: TCPRelay) async throws {
        // A connect timeout never reached: the attempt ends below when the
        // backend makes room in its accept queue, so a busy machine cannot
        // make the test miss the attempt in flight.
        let (proxy, server) = try await proxyToHangingBackend("reset", relay: relay, connectTimeout: 120_000)
        defer { server.close() }
        let port = try proxy.port(of: "reset")
        let client = try RawSocket.connect(port: port)
        #expect(await eventually { proxy.driver.read { $0.openConnections } == 1 })
        #expect(proxy.stats("reset")?.errors == 0, "the backend connect was still in flight")
        // SO_LINGER 0: the close sends a reset.
        var option = linger(l_onoff: 1, l_linger: 0)
        _ = setsockopt(client, SOL_SOCKET, SO_LINGER, &option, socklen_t(MemoryLayout<linger>.size))
        close(client)
        // The backend takes the filler from its queue: the proxy's next SYN
        // gets through, its attempt succeeds, and it closes that connection.
        let fromProxy = try await onThread { () throws -> [UInt8] in
            let filler = try RawSocket.accept(server.fd)
            close(filler)
            let fd = try RawSocket.accept(server.fd)
            defer { close(fd) }
            return try RawSocket.readToEnd(fd)
        }
        #expect(fromProxy.isEmpty)
        #expect(await eventually { proxy.driver.read { $0.openConnections } == 0 })
        #expect(proxy.stats("reset")?.active == 0)
        await proxy.shutdown()
    }

    @Test("removing a service through the admin API closes its listener; its open connections go on", arguments: TCPRelay.allCases)
    func listenerRemovalKeepsConnections(relay: TCPRelay) async throws {
        let proxy = ProxyHarness(relay: relay)
        let echo = try await TestBackend.start(.echo, group: proxy.group)
        try await proxy.apply(Config(services: [tcpService("gone", backends: [backend("a", port: echo.localAddress!.port!)])]))
        let port = try proxy.port(of: "gone")
        let client = try await TCPClient.connect(port: port, group: proxy.group)
        try await client.send("one ")
        #expect(await client.waitFor { $0 == "one " } == "one ")
        try await proxy.apply(.removeService(name: "gone"))
        // New clients are refused...
        #expect(await eventually { (try? RawSocket.connect(port: port)).map { close($0); return false } ?? true })
        // ...the open one still works, both ways.
        try await client.send("two")
        #expect(await client.waitFor { $0 == "one two" } == "one two")
        #expect(!client.isClosed)
        await client.close()
        #expect(await eventually { proxy.driver.read { $0.openConnections } == 0 })
        try await echo.close()
        await proxy.shutdown()
    }

    @Test("2,000 short connections, 50 at a time: the model counts every one and every byte", arguments: TCPRelay.allCases)
    func manyShortConnections(relay: TCPRelay) async throws {
        let proxy = ProxyHarness(relay: relay)
        let echo = try await TestBackend.start(.echo, group: proxy.group)
        try await proxy.apply(Config(services: [tcpService("many", backends: [backend("a", port: echo.localAddress!.port!)])]))
        let port = try proxy.port(of: "many")
        let total = 2_000
        let message = "ping-0123456789"
        let echoed = try await withThrowingTaskGroup(of: Bool.self) { group in
            var started = 0
            var good = 0
            func startOne() {
                group.addTask {
                    let client = try await TCPClient.connect(port: port, group: proxy.group)
                    try await client.send(message)
                    let ok = await client.waitFor { $0 == message } == message
                    await client.close()
                    return ok
                }
                started += 1
            }
            while started < 50 { startOne() }
            while let ok = try await group.next() {
                if ok { good += 1 }
                if started < total { startOne() }
            }
            return good
        }
        #expect(echoed == total)
        #expect(await eventually { proxy.stats("many")?.active == 0 && proxy.stats("many")?.connections == total })
        let stats = try #require(proxy.stats("many"))
        #expect(stats.sent == total * message.utf8.count)
        #expect(stats.received == total * message.utf8.count)
        #expect(proxy.driver.read { $0.openConnections } == 0)
        try await echo.close()
        await proxy.shutdown()
    }

    @Test("an IPv6 listener relays to an IPv6 backend", arguments: TCPRelay.allCases)
    func ipv6(relay: TCPRelay) async throws {
        let proxy = ProxyHarness(relay: relay)
        let echo = try await ServerBootstrap(group: proxy.group)
            .childChannelInitializer { channel in
                channel.eventLoop.makeCompletedFuture { try channel.pipeline.syncOperations.addHandler(EchoBack()) }
            }
            .bind(host: "::1", port: 0).get()
        let service = ServiceConfig(
            name: "six", address: "[::1]:0", network: "tcp6",
            backends: [BackendConfig(name: "a", address: "[::1]:\(echo.localAddress!.port!)", network: "tcp6")])
        try await proxy.apply(Config(services: [service]))
        let bound = try #require(proxy.driver.read { $0.listener(ofService: "six")?.boundAddress })
        #expect(bound.hasPrefix("[::1]:"))
        let port = try proxy.port(of: "six")
        let client = try await ClientBootstrap(group: proxy.group).connect(host: "::1", port: port).get()
        let received = NIOLockedValueBox("")
        try await client.pipeline.addHandler(Gather(into: received)).get()
        try await client.writeAndFlush(ByteBuffer(string: "over six"))
        #expect(await eventually { received.withLockedValue { $0 } == "over six" })
        try await client.close()
        #expect(await eventually { proxy.stats("six")?.active == 0 && proxy.stats("six")?.sent == 8 })
        try await echo.close()
        await proxy.shutdown()
    }

    @Test("a backend given by host name is resolved and reached", arguments: TCPRelay.allCases)
    func backendHostName(relay: TCPRelay) async throws {
        let proxy = ProxyHarness(relay: relay)
        let named = try await TestBackend.start(.name("by-name"), group: proxy.group)
        let service = tcpService(
            "named", backends: [BackendConfig(name: "a", address: "localhost:\(named.localAddress!.port!)", network: "tcp4")])
        try await proxy.apply(Config(services: [service]))
        #expect(try await nameThroughProxy(port: try proxy.port(of: "named"), group: proxy.group) == "by-name")
        try await named.close()
        await proxy.shutdown()
    }
}

/// Echoes what it reads.
final class EchoBack: ChannelInboundHandler, Sendable {
    typealias InboundIn = ByteBuffer
    typealias OutboundOut = ByteBuffer
    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        context.writeAndFlush(data, promise: nil)
    }
}

/// Collects what a client reads, as text.
final class Gather: ChannelInboundHandler, Sendable {
    typealias InboundIn = ByteBuffer
    let text: NIOLockedValueBox<String>
    init(into text: NIOLockedValueBox<String>) { self.text = text }
    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        let buffer = unwrapInboundIn(data)
        text.withLockedValue { $0 += String(buffer: buffer) }
    }
}
