import Benchmark
import NIOCore
import NIOEmbedded
import NIOHTTP1
import ShuttleHTTPWire

// What an HTTP request's heads cost in user space, per request: reading
// the request head and writing it for the backend, then reading the
// answer's head and writing it for the client. Once with ShuttleHTTPWire
// (in place, from the bytes), once the way the NIO path does it (NIOHTTP1's
// decoders and encoders in channels, the header rules' HTTPHeaders edits).
// The heads are wrk's request and the benchmark origin's answer, with its
// 128-byte body (read past by the decoder; the scanner stops at the head).

let request = Array("GET /small HTTP/1.1\r\nHost: bench.local\r\n\r\n".utf8)
let response = Array(
    ("HTTP/1.1 200 OK\r\nServer: nginx/1.22.1\r\nDate: Sun, 29 Nov 2026 21:00:00 GMT\r\n"
        + "Content-Type: application/octet-stream\r\nContent-Length: 128\r\n"
        + "Last-Modified: Sun, 29 Nov 2026 20:00:00 GMT\r\nConnection: keep-alive\r\n"
        + "ETag: \"6929a000-80\"\r\nAccept-Ranges: bytes\r\n\r\n").utf8) + [UInt8](repeating: 120, count: 128)

let benchmarks: @Sendable () -> Void = {
    Benchmark.defaultConfiguration = .init(
        metrics: [.wallClock, .mallocCountTotal, .instructions, .throughput],
        timeUnits: .nanoseconds,
        warmupIterations: 3,
        scalingFactor: .kilo,
        maxDuration: .seconds(2),
        maxIterations: 1_000
    )

    Benchmark("ShuttleHTTPWire: request and answer heads read and written") { benchmark in
        var scanner = HTTPHeadScanner()
        var out: [UInt8] = []
        out.reserveCapacity(1024)
        benchmark.startMeasurement()
        for _ in benchmark.scaledIterations {
            request.withUnsafeBytes { bytes in
                guard case .head(let head) = scanner.scanRequest(bytes) else { fatalError("request not read") }
                out.removeAll(keepingCapacity: true)
                HTTPHeadWriter.backendRequest(
                    head, fields: scanner.fields, of: bytes, clientIP: "127.0.0.1", isTLS: false,
                    requestID: "0123456789abcdef", into: &out)
            }
            blackHole(out.count)
            response.withUnsafeBytes { bytes in
                guard case .head(let head) = scanner.scanResponse(bytes, toHEAD: false) else {
                    fatalError("response not read")
                }
                out.removeAll(keepingCapacity: true)
                blackHole(
                    HTTPHeadWriter.clientResponse(
                        head, fields: scanner.fields, of: bytes, clientMinorVersion: 1, toHEAD: false, keepAlive: true,
                        asksUpgrade: false, requestID: "0123456789abcdef", backend: "127.0.0.1:18080", into: &out))
            }
            blackHole(out.count)
        }
    }

    Benchmark("NIOHTTP1: the same through the proxy's codecs, in two embedded channels") { benchmark in
        // The client's channel decodes requests and encodes answers; the
        // backend's encodes requests and decodes answers: the NIO path's
        // four codecs, and the header rules' edits between them.
        let client = EmbeddedChannel()
        let backend = EmbeddedChannel()
        var encoding = HTTPResponseEncoder.Configuration()
        encoding.automaticallySetFramingHeaders = false
        try client.pipeline.syncOperations.addHandler(HTTPResponseEncoder(configuration: encoding))
        try client.pipeline.syncOperations.addHandler(ByteToMessageHandler(HTTPRequestDecoder()))
        try backend.pipeline.syncOperations.addHandler(HTTPRequestEncoder())
        try backend.pipeline.syncOperations.addHandler(ByteToMessageHandler(HTTPResponseDecoder()))
        let requestBuffer = ByteBuffer(bytes: request)
        let responseBuffer = ByteBuffer(bytes: response)
        benchmark.startMeasurement()
        for _ in benchmark.scaledIterations {
            try client.writeInbound(requestBuffer)
            guard case .head(var head) = try client.readInbound(as: HTTPServerRequestPart.self) else {
                fatalError("request not read")
            }
            _ = try client.readInbound(as: HTTPServerRequestPart.self)  // .end
            head.headers.replaceOrAdd(name: "X-Forwarded-For", value: "127.0.0.1")
            head.headers.add(name: "X-Forwarded-Proto", value: "http")
            head.headers.replaceOrAdd(name: "X-Request-Id", value: "0123456789abcdef")
            try backend.writeOutbound(HTTPClientRequestPart.head(head))
            try backend.writeOutbound(HTTPClientRequestPart.end(nil))
            while let written = try backend.readOutbound(as: IOData.self) { blackHole(written) }
            try backend.writeInbound(responseBuffer)
            guard case .head(var answer) = try backend.readInbound(as: HTTPClientResponsePart.self) else {
                fatalError("response not read")
            }
            while let part = try backend.readInbound(as: HTTPClientResponsePart.self) { blackHole(part) }
            answer.headers.remove(name: "connection")
            answer.headers.replaceOrAdd(name: "X-Request-Id", value: "0123456789abcdef")
            answer.headers.replaceOrAdd(name: "X-Backend", value: "127.0.0.1:18080")
            try client.writeOutbound(HTTPServerResponsePart.head(answer))
            while let written = try client.readOutbound(as: IOData.self) { blackHole(written) }
        }
    }
}
