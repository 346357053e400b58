import NIOCore
import NIOHTTP1
import NIOPosix
import NIOSSL
import ShuttleModel

/// GET over TLS, for error pages at https URLs.
enum TLSClient {
    static func get(_ url: ParsedURL, on loop: any EventLoop, maximumSize: Int, timeout: TimeAmount)
        -> EventLoopFuture<(HTTPResponseHead, ByteBuffer)>
    {
        let context: NIOSSLContext
        do {
            context = try NIOSSLContext(configuration: .makeClientConfiguration())
        } catch {
            return loop.makeFailedFuture(error)
        }
        let promise = loop.makePromise(of: (HTTPResponseHead, ByteBuffer).self)
        let collector = ResponseCollector(promise: promise, maximumSize: maximumSize)
        let serverName = HostPort.parse("\(url.host):1", listening: false).map { hp -> String? in
            if case .name = hp.host { return url.host }
            return nil
        }
        ClientBootstrap(group: loop)
            .connectTimeout(timeout)
            .channelInitializer { channel in
                channel.eventLoop.makeCompletedFuture {
                    let tls = try NIOSSLClientHandler(context: context, serverHostname: (try? serverName.get()) ?? nil)
                    try channel.pipeline.syncOperations.addHandler(tls)
                    try channel.pipeline.syncOperations.addHTTPClientHandlers()
                    try channel.pipeline.syncOperations.addHandler(collector)
                }
            }
            .connect(host: url.host, port: url.port)
            .whenComplete { result in
                switch result {
                case .success(let channel):
                    collector.send(url, on: channel)
                    let timer = loop.scheduleTask(in: timeout) {
                        collector.fail(SimpleHTTPClient.Failure(description: "timed out"))
                        channel.close(promise: nil)
                    }
                    promise.futureResult.whenComplete { _ in timer.cancel() }
                case .failure(let error):
                    promise.fail(error)
                }
            }
        return promise.futureResult
    }
}
