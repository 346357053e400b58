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
}
