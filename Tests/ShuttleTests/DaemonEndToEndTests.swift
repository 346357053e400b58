import Foundation
import NIOCore
import NIOPosix
import ShuttleModel
import ShuttleTestSupport
import Testing

@Suite("The shuttle binary, end to end")
struct DaemonEndToEndTests {
    static let group = MultiThreadedEventLoopGroup.singleton

    @Test("-v prints the version")
    func version() throws {
        let daemon = try DaemonProcess(["-v"])
        #expect(daemon.process.waitUntilExit() == 0)
    }

    @Test("an invalid -config is refused with every problem listed and exit status 2")
    func invalidConfig() throws {
        let directory = try temporaryDirectory()
        defer { try? FileManager.default.removeItem(at: directory) }
        let file = directory.appendingPathComponent("bad.json")
        try #"{"fall": -1, "services": [{"name": "a/b", "address": "nowhere", "backends": [{"name": "x", "address": "1.2.3.4"}]}]}"#
            .write(to: file, atomically: false, encoding: .utf8)
        let (status, stderr) = try DaemonProcess.run(["-config", file.path, "-admin", "127.0.0.1:0"])
        #expect(status == 2)
        #expect(stderr.contains("fall: -1 is negative"))
        #expect(stderr.contains("services[0].name"))
        #expect(stderr.contains("services[0].address"))
        #expect(stderr.contains("services[0].backends[0].address"))
    }

    @Test("-tcp-relay takes splice or nio, nothing else")
    func unknownRelay() throws {
        let (status, stderr) = try DaemonProcess.run(["-tcp-relay", "sendfile", "-admin", "127.0.0.1:0"])
        #expect(status != 0)
        #expect(stderr.contains("is not splice or nio"))
    }

    @Test("-udp-relay takes epoll or nio, nothing else")
    func unknownUDPRelay() throws {
        let (status, stderr) = try DaemonProcess.run(["-udp-relay", "io_uring", "-admin", "127.0.0.1:0"])
        #expect(status != 0)
        #expect(stderr.contains("-udp-relay \"io_uring\" is not epoll or nio"))
    }

    @Test("a change through the API survives a restart through the state file; -config is never written")
    func stateSurvivesRestart() async throws {
        let directory = try temporaryDirectory()
        defer { try? FileManager.default.removeItem(at: directory) }
        let echo = try await TestBackend.start(.echo, group: Self.group)
        let config = try configFile(in: directory, backendPort: echo.localAddress!.port!)
        let configBefore = try Data(contentsOf: config)
        let state = directory.appendingPathComponent("state.json")
        let arguments = ["-config", config.path, "-state", state.path, "-admin", "127.0.0.1:0"]

        let first = try DaemonProcess(arguments)
        let port = try await first.adminPort()
        let added = try admin(
            port, "PUT", "/echo/two", body: #"{"address": "127.0.0.1:\#(echo.localAddress!.port!)", "weight": 3}"#)
        #expect(added.status == 200)
        // Traffic flows through the binary.
        let client = try await TCPClient.connect(port: try listenPort(admin: port, service: "echo"), group: Self.group)
        try await client.send("through the binary")
        #expect(await client.waitFor { $0 == "through the binary" } == "through the binary")
        await client.close()
        first.terminate()
        #expect(await first.waitForExit() == 0)

        let saved = try ConfigCoding.decodeConfig(Data(contentsOf: state)).value?.config
        #expect(saved?.service(named: "echo")?.backend(named: "two")?.weight == 3)
        #expect(try Data(contentsOf: config) == configBefore)

        let second = try DaemonProcess(arguments)
        let port2 = try await second.adminPort()
        let running = try admin(port2, "GET", "/_config")
        let decoded = try #require(ConfigCoding.decodeConfig(Data(running.body)).value?.config)
        #expect(decoded.service(named: "echo")?.backends.map(\.name) == ["one", "two"])
        second.terminate()
        #expect(await second.waitForExit() == 0)
        try await echo.close()
    }

    @Test("a corrupt state file is kept aside and the config file used")
    func corruptStateKeptAside() async throws {
        let directory = try temporaryDirectory()
        defer { try? FileManager.default.removeItem(at: directory) }
        let config = try configFile(in: directory, backendPort: 9)
        let state = directory.appendingPathComponent("state.json")
        try Data("{ this is not json".utf8).write(to: state)
        let daemon = try DaemonProcess(["-config", config.path, "-state", state.path, "-admin", "127.0.0.1:0"])
        let port = try await daemon.adminPort()
        let running = try ConfigCoding.decodeConfig(Data(try admin(port, "GET", "/_config").body)).value?.config
        #expect(running?.services.map(\.name) == ["echo"])
        let files = try FileManager.default.contentsOfDirectory(atPath: directory.path)
        let kept = try #require(files.first { $0.hasPrefix("state.json.corrupt-") })
        #expect(try String(contentsOf: directory.appendingPathComponent(kept), encoding: .utf8) == "{ this is not json")
        #expect(daemon.stderr.contains("state file is unusable"))
        daemon.terminate()
        #expect(await daemon.waitForExit() == 0)
    }

    @Test("SIGTERM stops new connections but lets an open one finish", arguments: ["splice", "nio"])
    func sigtermDrains(relay: String) async throws {
        let directory = try temporaryDirectory()
        defer { try? FileManager.default.removeItem(at: directory) }
        let echo = try await TestBackend.start(.echo, group: Self.group)
        let config = try configFile(in: directory, backendPort: echo.localAddress!.port!)
        let daemon = try DaemonProcess([
            "-config", config.path, "-admin", "127.0.0.1:0", "-drain-timeout", "30s", "-tcp-relay", relay,
        ])
        let port = try await daemon.adminPort()
        let servicePort = try listenPort(admin: port, service: "echo")
        let client = try await TCPClient.connect(port: servicePort, group: Self.group)
        try await client.send("before ")
        #expect(await client.waitFor { $0 == "before " } == "before ")

        daemon.terminate()
        // New connections are refused once the listener is closed…
        #expect(
            await eventually {
                daemon.stderr.contains("shutting down")
            })
        await #expect(throws: (any Error).self) {
            let late = try await TCPClient.connect(port: servicePort, group: Self.group)
            await late.close()
        }
        // …while the open one still works, and the daemon waits for it.
        try await client.send("after")
        #expect(await client.waitFor { $0 == "before after" } == "before after")
        #expect(daemon.process.isRunning)
        await client.close()
        #expect(await daemon.waitForExit() == 0)
        try await echo.close()
    }
}
