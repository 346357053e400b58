import NIOCore
import NIOHTTP1
import ShuttleModel

/// `Connection: Upgrade` (WebSocket and the like): after the backend's 101
/// both connections become one plain byte stream, glued like a TCP service's.
extension HTTPProxyHandler {
    /// Called at the end of the backend's 101, whose head already went to
    /// the client. Both decoders stopped at the upgrade and hold whatever
    /// came after it; they give it up when removed, so the glue goes in
    /// first, and the HTTP handlers leave the pipelines after it.
    func upgrade(_ exchange: HTTPExchange, _ connection: BackendConnection) {
        exchange.responseEnded = true
        exchange.requestEnded = true
        exchange.backend = nil
        connection.delegate = nil
        connection.canRead = nil
        report(exchange, outcome: .responded(status: 101))
        self.exchange = nil
        closing = true
        idleTimer?.cancel()
        context.writeAndFlush(wrapOutboundOut(.end(nil)), promise: nil)

        guard let backendChannel = connection.channel, backendChannel.isActive else {
            context.close(promise: nil)
            return
        }
        let client = context.channel
        let clientSide = GlueHandler()
        let backendSide = GlueHandler()
        do {
            let clientPipeline = client.pipeline.syncOperations
            let backendPipeline = backendChannel.pipeline.syncOperations
            try clientPipeline.addHandler(clientSide)
            try backendPipeline.addHandler(backendSide)
            GlueHandler.pair(clientSide, backendSide)
            // Outbound HTTP handlers first (the glue writes bytes), then the
            // inbound ones; each decoder last, handing its leftovers to the glue.
            let clientHTTP = codecHandlers.filter { !($0 is ByteToMessageHandler<HTTPRequestDecoder>) }
            let clientDecoders = codecHandlers.filter { $0 is ByteToMessageHandler<HTTPRequestDecoder> }
            for handler in [self as any RemovableChannelHandler] + clientHTTP {
                clientPipeline.removeHandler(handler, promise: nil)
            }
            // Leftovers are read without a read-complete, which is when the
            // glue flushes: flush them once the decoder is gone.
            for decoder in clientDecoders {
                clientPipeline.removeHandler(decoder).whenComplete { _ in backendChannel.flush() }
            }
            let backendHTTP = connection.codecHandlers.filter { !($0 is ByteToMessageHandler<HTTPResponseDecoder>) }
            let backendDecoders = connection.codecHandlers.filter { $0 is ByteToMessageHandler<HTTPResponseDecoder> }
            for handler in [connection as any RemovableChannelHandler] + backendHTTP {
                backendPipeline.removeHandler(handler, promise: nil)
            }
            for decoder in backendDecoders {
                backendPipeline.removeHandler(decoder).whenComplete { _ in client.flush() }
            }
        } catch {
            client.close(promise: nil)
            backendChannel.close(promise: nil)
            return
        }
        backendChannel.closeFuture.whenComplete { _ in client.close(promise: nil) }
        client.closeFuture.whenComplete { _ in backendChannel.close(promise: nil) }
        // Reads held back while the HTTP handlers decided go to the glue now.
        client.read()
        backendChannel.read()
    }
}
