import Foundation
import NIOCore
import NIOPosix
import ShuttleModel
@testable import ShuttleRuntime
import ShuttleTestSupport
import Testing

/// The admin API of a proxy harness, for the operational endpoints.
extension ProxyHarness {
    func bindAdmin(_ access: AdminAccess = AdminAccess()) async throws -> Int {
        let server = try await AdminServer.bind("127.0.0.1:0", driver: driver, access: access).get()
        return server.localAddress!.port!
    }
}

/// `/_metrics` as series name with labels → value.
func scrape(_ port: Int) throws -> [String: Double] {
    let response = try RawHTTPClient(port: port).request("GET", "/_metrics")
    #expect(response.status == 200)
    #expect(response.header("content-type")?.hasPrefix("text/plain") == true)
    var series: [String: Double] = [:]
    for line in response.text.split(separator: "\n") where !line.hasPrefix("#") {
        guard let space = line.lastIndex(of: " "), let value = Double(line[line.index(after: space)...]) else { continue }
        series[String(line[..<space])] = value
    }
    return series
}

@Suite("Operating shuttle: metrics, health, admin access")
struct OperationsTests {
    @Test("/_metrics after real traffic carries the model's exact counters and the connect-time histogram")
    func metricsAfterTraffic() async throws {
        let proxy = ProxyHarness()
        let echo = try await TestBackend.start(.echo, group: proxy.group)
        let dead = try await TestBackend.refusingPort(group: proxy.group)
        try await proxy.apply(
            Config(services: [
                tcpService("echo", backends: [backend("a", port: echo.localAddress!.port!), backend("b", port: dead)])
            ]))
        let admin = try await proxy.bindAdmin()
        let port = try proxy.port(of: "echo")
        for _ in 0..<3 {
            let client = try await TCPClient.connect(port: port, group: proxy.group)
            try await client.send("12345")
            #expect(await client.waitFor { $0 == "12345" } == "12345")
            await client.close()
        }
        #expect(await eventually { proxy.stats("echo")?.active == 0 && proxy.stats("echo")?.connections == 3 })

        let series = try scrape(admin)
        let a = #"service="echo",backend="a""#
        #expect(series[#"shuttle_backend_connections_total{\#(a)}"#] == 3)
        #expect(series[#"shuttle_backend_sent_bytes_total{\#(a)}"#] == 15)
        #expect(series[#"shuttle_backend_received_bytes_total{\#(a)}"#] == 15)
        #expect(series[#"shuttle_backend_active_connections{\#(a)}"#] == 0)
        #expect(series[#"shuttle_backend_up{\#(a)}"#] == 1)
        let errors = series[#"shuttle_backend_errors_total{service="echo",backend="b"}"#] ?? 0
        #expect(errors >= 1, "connects to the refusing backend count as errors")
        #expect(series[#"shuttle_service_connections_total{service="echo"}"#] == 3)
        #expect(series[#"shuttle_backend_connect_duration_seconds_count{\#(a)}"#] == 3)

        // A second scrape does not count twice.
        #expect(try scrape(admin)[#"shuttle_backend_connections_total{\#(a)}"#] == 3)

        // A removed backend's series go away.
        try await proxy.apply(.removeBackend(service: "echo", name: "b"))
        #expect(try scrape(admin)[#"shuttle_backend_errors_total{service="echo",backend="b"}"#] == nil)
        try await echo.close()
        await proxy.shutdown()
    }

    @Test("/_health is 503 while starting and draining, 200 while serving, and needs no token")
    func healthFollowsThePhase() async throws {
        let proxy = ProxyHarness()
        let admin = try await proxy.bindAdmin(AdminAccess(token: "secret", tokenForReads: true))
        func health() throws -> (Int, String?) {
            let response = try RawHTTPClient(port: admin).request("GET", "/_health")
            return (response.status, try response.object()["status"] as? String)
        }
        #expect(try health() == (503, "starting"))
        proxy.driver.phase.withLockedValue { $0 = .serving }
        #expect(try health() == (200, "serving"))
        proxy.driver.phase.withLockedValue { $0 = .draining }
        #expect(try health() == (503, "draining"))
        await proxy.shutdown()
    }

    @Test("with -admin-token, mutating calls without the right bearer token get 401 and change nothing")
    func mutatingCallsNeedTheToken() async throws {
        let proxy = ProxyHarness()
        let admin = try await proxy.bindAdmin(AdminAccess(token: "s3cret-token"))
        let body = #"{"address": "127.0.0.1:0", "backends": [{"name": "a", "address": "127.0.0.1:9"}]}"#
        for headers in [[], [("Authorization", "Bearer wrong")], [("Authorization", "Basic s3cret-token")]] {
            let refused = try RawHTTPClient(port: admin).request("PUT", "/web", body: body, headers: headers)
            #expect(refused.status == 401)
            #expect(refused.header("www-authenticate")?.hasPrefix("Bearer") == true)
            let deleted = try RawHTTPClient(port: admin).request("DELETE", "/web", headers: headers)
            #expect(deleted.status == 401)
        }
        #expect(proxy.driver.read { $0.config.services.isEmpty })
        // Reads stay open without -admin-token-reads.
        #expect(try RawHTTPClient(port: admin).request("GET", "/_config").status == 200)
        let accepted = try RawHTTPClient(port: admin).request(
            "PUT", "/web", body: body, headers: [("Authorization", "Bearer s3cret-token")])
        #expect(accepted.status == 200)
        #expect(proxy.driver.read { $0.config.service(named: "web") } != nil)
        await proxy.shutdown()
    }

    @Test("with -admin-token-reads, reads need the token too")
    func readsNeedTheTokenWhenAsked() async throws {
        let proxy = ProxyHarness()
        let admin = try await proxy.bindAdmin(AdminAccess(token: "t", tokenForReads: true))
        #expect(try RawHTTPClient(port: admin).request("GET", "/_config").status == 401)
        #expect(try RawHTTPClient(port: admin).request("GET", "/_metrics").status == 401)
        #expect(
            try RawHTTPClient(port: admin).request("GET", "/_config", headers: [("Authorization", "Bearer t")]).status
                == 200)
        await proxy.shutdown()
    }

    @Test("token comparison is exact: prefixes, longer and empty guesses fail")
    func tokenComparison() {
        #expect(AdminAccess.constantTimeEqual(Array("abc".utf8), Array("abc".utf8)))
        #expect(!AdminAccess.constantTimeEqual(Array("ab".utf8), Array("abc".utf8)))
        #expect(!AdminAccess.constantTimeEqual(Array("abcd".utf8), Array("abc".utf8)))
        #expect(!AdminAccess.constantTimeEqual([], Array("abc".utf8)))
        #expect(!AdminAccess.constantTimeEqual(Array("abd".utf8), Array("abc".utf8)))
    }
}
