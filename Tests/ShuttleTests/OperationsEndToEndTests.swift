import Foundation
import NIOCore
import NIOPosix
import ShuttleModel
import ShuttleTestSupport
import Testing

@Suite("Operating the binary")
struct OperationsEndToEndTests {
    static let group = MultiThreadedEventLoopGroup.singleton

    @Test("-log-format json writes one JSON object per line")
    func jsonLogs() async throws {
        let directory = try temporaryDirectory()
        defer { try? FileManager.default.removeItem(at: directory) }
        let echo = try await TestBackend.start(.echo, group: Self.group)
        let config = try configFile(in: directory, backendPort: echo.localAddress!.port!)
        let daemon = try DaemonProcess(["-config", config.path, "-admin", "127.0.0.1:0", "-log-format", "json", "-debug"])
        let port = try await daemon.adminPortFromJSON()
        #expect(try admin(port, "PUT", "/echo/two", body: #"{"address": "127.0.0.1:9"}"#).status == 200)
        daemon.terminate()
        #expect(await daemon.waitForExit() == 0)
        let lines = daemon.stderr.split(separator: "\n")
        #expect(lines.count >= 4)
        for line in lines {
            let object = try JSONSerialization.jsonObject(with: Data(line.utf8)) as? [String: Any]
            #expect(object?["message"] is String, "not a JSON log line: \(line)")
            #expect(object?["level"] is String)
            #expect(object?["time"] is String)
        }
        #expect(lines.contains { $0.contains(#""service":"echo""#) })
        try await echo.close()
    }

    @Test("while SIGTERM drains an open connection, /_health answers 503 and the admin API stays up")
    func healthDuringDrain() async throws {
        let directory = try temporaryDirectory()
        defer { try? FileManager.default.removeItem(at: directory) }
        let echo = try await TestBackend.start(.echo, group: Self.group)
        let config = try configFile(in: directory, backendPort: echo.localAddress!.port!)
        let daemon = try DaemonProcess(["-config", config.path, "-admin", "127.0.0.1:0", "-drain-timeout", "30s"])
        let port = try await daemon.adminPort()
        #expect(await eventually { (try? admin(port, "GET", "/_health").status) == 200 })
        let client = try await TCPClient.connect(port: try listenPort(admin: port, service: "echo"), group: Self.group)
        try await client.send("x")
        #expect(await client.waitFor { $0 == "x" } == "x")
        daemon.terminate()
        #expect(await eventually { (try? admin(port, "GET", "/_health").status) == 503 })
        #expect(try admin(port, "GET", "/_stats").status == 200)
        await client.close()
        #expect(await daemon.waitForExit() == 0)
        try await echo.close()
    }
}

extension DaemonProcess {
    /// The admin port from a JSON log line `{"message":"admin API listening","address":"…:PORT"}`.
    func adminPortFromJSON(timeout: Duration = .seconds(30)) async throws -> Int {
        let deadline = ContinuousClock.now + timeout
        while ContinuousClock.now < deadline {
            for line in stderr.split(separator: "\n") where line.contains("admin API listening") {
                if let object = try? JSONSerialization.jsonObject(with: Data(line.utf8)) as? [String: Any],
                    let address = object["address"] as? String, let port = Int(address.split(separator: ":").last ?? "")
                {
                    return port
                }
            }
            try await Task.sleep(for: .milliseconds(20))
        }
        throw RawHTTPClient.Failure(description: "no admin port in:\n" + stderr)
    }
}
