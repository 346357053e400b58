import NIOCore
import ShuttleModel
import ShuttleRuntime
import ShuttleTestSupport
import Testing

@Suite("HTTP virtual hosts: answers that do not wait for the whole request, answers cut short")
struct EarlyAnswerTests {
    @Test("a backend that answers before the body is in: the client gets it and its connection carries on")
    func answerBeforeBody() async throws {
        let harness = try await HTTPHarness.start()
        let early = try await TestHTTPBackend.start(.answerAtHead(413, body: "too large"), group: harness.group)
        let named = try await TestHTTPBackend.start(.named("next"), group: harness.group)
        try await harness.apply([
            vhostService("e", hosts: ["e.test"], backends: [backend("a", early)]),
            vhostService("n", hosts: ["n.test"], backends: [backend("b", named)]),
        ])
        let connection = try await harness.connect()
        try await connection.send("POST /up HTTP/1.1\r\nHost: e.test\r\nContent-Length: 10\r\n\r\nhello")
        let response = try await connection.readResponse()
        #expect(response.status == 413)
        #expect(response.text == "too large")
        // The rest of the body is read and dropped; the next request is answered.
        try await connection.send("world")
        #expect(try await connection.request(host: "n.test").text == "next")
        #expect(harness.stats("e")?.httpErrors == 0)
        await connection.close()
        await early.close()
        await named.close()
        await harness.shutdown()
    }

    @Test("a request waiting for 100 Continue that the proxy answers itself is answered and closed")
    func expectContinueAnsweredLocally() async throws {
        let harness = try await HTTPHarness.start()
        let connection = try await harness.connect()
        try await connection.send(
            "PUT /x HTTP/1.1\r\nHost: nobody.test\r\nContent-Length: 5\r\nExpect: 100-continue\r\n\r\n")
        let response = try await connection.readResponse()
        #expect(response.status == 404)
        #expect(response.header("connection")?.lowercased() == "close")
        #expect(await connection.waitForClose())
        await harness.shutdown()
    }

    @Test("a backend that dies in the middle of its answer: the client's connection is closed, the error counted")
    func truncatedAnswer() async throws {
        let harness = try await HTTPHarness.start()
        let server = try await TestHTTPBackend.start(.truncated(declared: 100, sent: "partial"), group: harness.group)
        try await harness.apply([vhostService("t", hosts: ["t.test"], backends: [backend("a", server)])])
        let connection = try await harness.connect()
        try await connection.send(HTTPRequestText.make(host: "t.test"))
        #expect(await connection.waitForClose())
        #expect(connection.text.hasPrefix("HTTP/1.1 200"))
        #expect(connection.text.hasSuffix("partial"))
        #expect(await eventually { harness.stats("t")?.httpErrors == 1 })
        #expect(harness.backendStats("t", "a")?.httpActive == 0)
        #expect(await eventually { harness.logLines().contains { $0.contains("status=200") && !$0.hasSuffix("err=\n") } })
        await server.close()
        await harness.shutdown()
    }
}
