import NIOCore

/// One half of a pair gluing two channels together (after swift-nio-examples'
/// connect proxy): what one channel reads the other writes. A side reads
/// only while its partner is writable, so a slow reader stops the fast
/// writer instead of filling the proxy's memory. A side whose input ends
/// (half-close) ends its partner's output; the partner keeps reading.
final class GlueHandler {
    private var partner: GlueHandler?
    private var context: ChannelHandlerContext?
    private var pendingRead = false
    private var inputClosed = false
    private var outputClosed = false
    /// Bytes this side has read (and handed to its partner).
    private(set) var bytesRead = 0
    /// What arrived before there was a partner. NIO reads a socket whose
    /// peer half-closed to its end whether or not a read was asked for, so
    /// an unpaired side can receive bytes and the end of input; they wait
    /// here for the partner instead of being lost.
    private var held: [NIOAny] = []
    private var heldEndOfInput = false
    /// Called on this channel's loop after every read batch.
    var onReadComplete: (() -> Void)?

    /// An unpaired handler reads nothing: a read request waits until it is
    /// paired, so a client's bytes stay in the kernel while its backend is
    /// being connected.
    init() {}

    /// Pairs two handlers that are in their pipelines, on one event loop,
    /// and lets each read if it was asked to.
    static func pair(_ first: GlueHandler, _ second: GlueHandler) {
        first.partner = second
        second.partner = first
        first.deliverHeld()
        second.deliverHeld()
        first.partnerBecameWritable()
        second.partnerBecameWritable()
    }

    /// Hands what arrived before pairing to the partner.
    private func deliverHeld() {
        guard let partner else { return }
        if !held.isEmpty {
            for data in held { partner.partnerWrite(data) }
            held.removeAll()
            partner.partnerFlush()
        }
        if heldEndOfInput {
            heldEndOfInput = false
            partner.partnerWriteEOF()
            if outputClosed { context?.close(promise: nil) }
        }
    }

    private func partnerWrite(_ data: NIOAny) {
        context?.write(data, promise: nil)
    }

    private func partnerFlush() {
        context?.flush()
    }

    private func partnerWriteEOF() {
        guard let context, !outputClosed else { return }
        outputClosed = true
        // The end of input can arrive in the same read as the last bytes,
        // before the read completes and flushes them: flush first, or the
        // half-close would be sent ahead of (and instead of) that data.
        context.flush()
        context.close(mode: .output, promise: nil)
        if inputClosed { context.close(promise: nil) }
    }

    private func partnerCloseFull() {
        context?.close(promise: nil)
    }

    private func partnerBecameWritable() {
        if pendingRead {
            pendingRead = false
            context?.read()
        }
    }

    private var partnerWritable: Bool {
        context?.channel.isWritable ?? false
    }
}

extension GlueHandler: ChannelDuplexHandler {
    typealias InboundIn = ByteBuffer
    typealias OutboundIn = ByteBuffer
    typealias OutboundOut = ByteBuffer

    func handlerAdded(context: ChannelHandlerContext) {
        self.context = context
    }

    func handlerRemoved(context: ChannelHandlerContext) {
        self.context = nil
        partner = nil
    }

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        bytesRead += unwrapInboundIn(data).readableBytes
        if let partner {
            partner.partnerWrite(data)
        } else {
            held.append(data)
        }
    }

    func channelReadComplete(context: ChannelHandlerContext) {
        partner?.partnerFlush()
        onReadComplete?()
    }

    func channelInactive(context: ChannelHandlerContext) {
        partner?.partnerCloseFull()
        context.fireChannelInactive()
    }

    func userInboundEventTriggered(context: ChannelHandlerContext, event: Any) {
        if let event = event as? ChannelEvent, case .inputClosed = event {
            inputClosed = true
            if let partner {
                partner.partnerWriteEOF()
            } else {
                heldEndOfInput = true
            }
            if outputClosed { context.close(promise: nil) }
        }
        context.fireUserInboundEventTriggered(event)
    }

    func errorCaught(context: ChannelHandlerContext, error: any Error) {
        partner?.partnerCloseFull()
        context.close(promise: nil)
    }

    func channelWritabilityChanged(context: ChannelHandlerContext) {
        if context.channel.isWritable {
            partner?.partnerBecameWritable()
        }
        context.fireChannelWritabilityChanged()
    }

    func read(context: ChannelHandlerContext) {
        if let partner, partner.partnerWritable {
            context.read()
        } else {
            pendingRead = true
        }
    }
}

/// Closes the channel when its `IdleStateHandler` reports no traffic for
/// the configured time (`client_timeout`, `server_timeout`).
final class IdleCloser: ChannelInboundHandler {
    typealias InboundIn = NIOAny

    func userInboundEventTriggered(context: ChannelHandlerContext, event: Any) {
        if event is IdleStateHandler.IdleStateEvent {
            context.close(promise: nil)
            return
        }
        context.fireUserInboundEventTriggered(event)
    }
}
