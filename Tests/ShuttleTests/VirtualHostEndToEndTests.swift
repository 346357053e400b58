import Foundation
import NIOCore
import NIOPosix
import ShuttleTestSupport
import Testing

@Suite("The shuttle binary's virtual hosts, end to end, with curl")
struct VirtualHostEndToEndTests {
    static let group = MultiThreadedEventLoopGroup.singleton

    @Test(
        "out of descriptors, the HTTP listener pauses instead of spinning, and serves again once clients leave",
        arguments: ["epoll", "nio"])
    func outOfDescriptors(relay: String) async throws {
        let directory = try temporaryDirectory()
        defer { try? FileManager.default.removeItem(at: directory) }
        let backend = try await TestHTTPBackend.start(.named("served"), group: Self.group)
        let config = directory.appendingPathComponent("config.json")
        try """
        {"services": [{"name": "web", "address": "127.0.0.1:0", "virtual_hosts": ["web.test"],
          "backends": [{"name": "b", "address": "\(backend.address)"}]}]}
        """.write(to: config, atomically: false, encoding: .utf8)
        let daemon = try DaemonProcess.withDescriptorLimit(
            96, ["-config", config.path, "-admin", "127.0.0.1:0", "-http", "127.0.0.1:0", "-http-relay", relay])
        defer { daemon.terminate() }
        _ = try await daemon.adminPort()
        let httpPort = try await daemon.listeningPort("HTTP virtual hosts listening")
        // More clients than descriptors: the listener runs out.
        var clients: [TCPClient] = []
        for _ in 0..<120 { clients.append(try await TCPClient.connect(port: httpPort, group: Self.group)) }
        if relay == "epoll" {
            #expect(await eventually { daemon.stderr.contains("accept failed") })
        }  // (NIO's server channel backs off by itself, without a log line.)
        try await Task.sleep(for: .seconds(2))
        // Paused, a second at a time per loop: a few lines. Spinning on the
        // level-triggered socket, it wrote thousands.
        let lines = daemon.stderr.components(separatedBy: "accept failed").count - 1
        #expect(lines < 50, "\(lines) accept failures logged")
        for client in clients { await client.close() }
        let served = await eventuallyAsync {
            (try? curl(["-H", "Host: web.test", "http://127.0.0.1:\(httpPort)/"]).output) == "served"
        }
        #expect(served)
        daemon.terminate()
        _ = await daemon.waitForExit()
        await backend.close()
    }

    @Test("-http and -https serve two virtual hosts; SIGHUP reloads the certificates")
    func twoVirtualHosts() async throws {
        let directory = try temporaryDirectory()
        defer { try? FileManager.default.removeItem(at: directory) }
        let certs = directory.appendingPathComponent("certs")
        try FileManager.default.createDirectory(at: certs, withIntermediateDirectories: true)
        try TestCertificate.write(file: "one", dnsNames: ["one.test"], to: certs)
        let twoBefore = try TestCertificate.write(file: "two", dnsNames: ["two.test"], to: certs)
        let one = try await TestHTTPBackend.start(.named("backend one"), group: Self.group)
        let two = try await TestHTTPBackend.start(.named("backend two"), group: Self.group)
        let config = directory.appendingPathComponent("config.json")
        try """
        {"services": [
          {"name": "one", "address": "127.0.0.1:0", "virtual_hosts": ["one.test"],
           "backends": [{"name": "b1", "address": "\(one.address)"}]},
          {"name": "two", "address": "127.0.0.1:0", "virtual_hosts": ["two.test", "*.two.test"],
           "backends": [{"name": "b2", "address": "\(two.address)"}]}
        ]}
        """.write(to: config, atomically: false, encoding: .utf8)

        let daemon = try DaemonProcess([
            "-config", config.path, "-admin", "127.0.0.1:0", "-http", "127.0.0.1:0", "-https", "127.0.0.1:0",
            "-certs", certs.path,
        ])
        let adminPort = try await daemon.adminPort()
        let httpPort = try await daemon.listeningPort("HTTP virtual hosts listening")
        let httpsPort = try await daemon.listeningPort("HTTPS virtual hosts listening")

        // Plain HTTP, routed by the Host header.
        let plainOne = try curl(["--resolve", "one.test:\(httpPort):127.0.0.1", "http://one.test:\(httpPort)/"])
        #expect(plainOne.output == "backend one", "\(plainOne.error)")
        let plainTwo = try curl(["-H", "Host: www.two.test", "http://127.0.0.1:\(httpPort)/x"])
        #expect(plainTwo.output == "backend two", "\(plainTwo.error)")
        let unknown = try curl(["-o", "/dev/null", "-w", "%{http_code}", "-H", "Host: nobody.test", "http://127.0.0.1:\(httpPort)/"])
        #expect(unknown.output == "404")

        // HTTPS: SNI picks each host's certificate.
        for (host, body) in [("one.test", "backend one"), ("two.test", "backend two")] {
            let result = try curl(["-k", "-v", "--resolve", "\(host):\(httpsPort):127.0.0.1", "https://\(host):\(httpsPort)/"])
            #expect(result.output == body, "\(result.error)")
            #expect(result.error.contains("CN=\(host)"), "\(result.error)")
        }

        // SIGHUP: a new certificate for two.test, while a connection stays open.
        let open = try await HTTPTestConnection.connect(port: httpsPort, group: Self.group, tls: .init(serverName: "two.test"))
        #expect(try await open.request(host: "two.test").text == "backend two")
        let twoAfter = try TestCertificate.write(file: "two", dnsNames: ["two.test"], to: certs)
        daemon.signal(SIGHUP)
        let reloaded = await eventuallyAsync {
            guard let fresh = try? await HTTPTestConnection.connect(port: httpsPort, group: Self.group, tls: .init(serverName: "two.test"))
            else { return false }
            defer { Task { await fresh.close() } }
            return (try? await fresh.peerCertificateDER()) == twoAfter.der
        }
        #expect(reloaded)
        #expect(try await open.request(host: "two.test").text == "backend two")
        #expect(try await open.peerCertificateDER() == twoBefore.der)
        await open.close()

        // The admin call reloads too and says what is served.
        let answer = try admin(adminPort, "POST", "/_certs/reload")
        #expect(answer.status == 200)
        #expect(try answer.object()["served"] as? [String] == ["one", "two"])

        // One access log line per request, on standard error.
        let log = daemon.stderr
        #expect(log.contains("method=GET client-ip=127.0.0.1 url=/x backend=\(two.address) status=200"))

        daemon.terminate()
        #expect(await daemon.waitForExit() == 0)
        await one.close()
        await two.close()
    }

    @Test("-https with no usable certificate is a clear start-up error")
    func noCertificates() throws {
        let directory = try temporaryDirectory()
        defer { try? FileManager.default.removeItem(at: directory) }
        let (status, stderr) = try DaemonProcess.run([
            "-admin", "127.0.0.1:0", "-https", "127.0.0.1:0", "-certs", directory.path,
        ])
        #expect(status != 0)
        #expect(stderr.contains("no usable certificate"))
    }
}

/// Polls an async condition until it holds or the timeout passes.
func eventuallyAsync(timeout: Duration = .seconds(30), _ condition: () async -> Bool) async -> Bool {
    let deadline = ContinuousClock.now + timeout
    while ContinuousClock.now < deadline {
        if await condition() { return true }
        try? await Task.sleep(for: .milliseconds(50))
    }
    return await condition()
}
