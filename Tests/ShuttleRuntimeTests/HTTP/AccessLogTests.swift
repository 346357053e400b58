import Foundation
import NIOCore
import ShuttleModel
import ShuttleRuntime
import ShuttleTestSupport
import Testing

@Suite("HTTP virtual hosts: the access log")
struct AccessLogTests {
    @Test("one logfmt line per request: id, method, client-ip, url, backend, status, duration, agent, err")
    func lineFormat() async throws {
        let harness = try await HTTPHarness.start()
        let server = try await TestHTTPBackend.start(.named("a"), group: harness.group)
        try await harness.apply([vhostService("l", hosts: ["l.test"], backends: [backend("a", server)])])
        let response = try await harness.request(
            "GET", "/path?q=1", host: "l.test", headers: [("User-Agent", "test agent/1.0")])
        let id = try #require(response.header("x-request-id"))
        #expect(await eventually { harness.logLines().count == 1 })
        let line = try #require(harness.logLines().first)
        let pattern =
            #"^id=\#(id) method=GET client-ip=127\.0\.0\.1 url="/path\?q=1" backend=127\.0\.0\.1:\#(server.port) status=200 duration=[0-9]+\.[0-9]{6} agent="test agent/1\.0" err=\n$"#
        #expect(line.range(of: pattern, options: .regularExpression) != nil, "\(line)")

        // A request answered without a backend is logged too.
        _ = try await harness.request(host: "nobody.test")
        #expect(await eventually { harness.logLines().count == 2 })
        #expect(harness.logLines().last?.contains("status=404 ") == true)
        await server.close()
        await harness.shutdown()
    }

    @Test("many requests on concurrent keep-alive connections: one whole line each, and each timed once")
    func linesUnderLoad() async throws {
        let harness = try await HTTPHarness.start()
        let server = try await TestHTTPBackend.start(.named("a"), group: harness.group)
        try await harness.apply([vhostService("busy", hosts: ["busy.test"], backends: [backend("a", server)])])
        let (connections, perConnection) = (8, 25)
        let ids = try await withThrowingTaskGroup(of: [String].self) { group in
            for c in 0..<connections {
                group.addTask {
                    let connection = try await harness.connect()
                    var ids: [String] = []
                    for r in 0..<perConnection {
                        let response = try await connection.request("GET", "/c\(c)/r\(r)", host: "busy.test")
                        ids.append(try #require(response.header("x-request-id")))
                    }
                    await connection.close()
                    return ids
                }
            }
            return try await group.reduce(into: []) { $0 += $1 }
        }
        let total = connections * perConnection
        #expect(Set(ids).count == total)
        #expect(await eventually { harness.logLines().count == total })
        let lines = harness.logLines()
        let pattern = #"^id=[^ ]+ method=GET client-ip=127\.0\.0\.1 url=/c[0-9]+/r[0-9]+ backend=127\.0\.0\.1:[0-9]+ status=200 duration=[0-9]+\.[0-9]{6} agent= err=\n$"#
        #expect(lines.allSatisfy { $0.range(of: pattern, options: .regularExpression) != nil })
        let logged = Set(lines.compactMap { $0.split(separator: " ").first?.dropFirst(3) }.map(String.init))
        #expect(logged == Set(ids))
        let count = #"shuttle_http_request_duration_seconds_count{service="busy"} \#(total)"#
        #expect(await eventually { harness.driver.metrics.registry.emitToString().contains(count) })
        await server.close()
        await harness.shutdown()
    }
}
