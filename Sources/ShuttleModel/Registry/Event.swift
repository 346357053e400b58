/// Everything that can happen to the proxy, as the drivers (the real
/// runtime, the simulator) report it to the model.
public enum Event: Equatable, Sendable {
    /// An admin request that changes the configuration. Answered by a
    /// `.reply` action, at once or after the listeners it needs are bound.
    case admin(RequestID, AdminCommand)
    /// The listener asked for by `.bindListener` is bound; `address` is the
    /// local address it got (the port chosen for port 0).
    case listenerBound(ListenerID, address: String)
    /// The listener asked for by `.bindListener` could not be bound.
    case listenerFailed(ListenerID, reason: String)
    /// A health check of a backend finished.
    case checkResult(BackendID, passed: Bool)
    /// A client connected to a listener (for UDP: a new client flow sent its
    /// first datagram). `key` is what consistent hashing uses.
    case clientConnected(ConnectionID, listener: ListenerID, key: BalanceKey)
    /// The backend connection asked for by `.connectBackend` is established.
    case backendConnected(ConnectionID)
    /// The backend connection asked for by `.connectBackend` failed.
    case backendConnectFailed(ConnectionID, reason: String)
    /// Bytes moved since the last report: `sent` to the backend, `received`
    /// from it.
    case bytesTransferred(ConnectionID, sent: Int, received: Int)
    /// The connection ended, whichever side closed it and wherever it was
    /// (also a client that left while its backend was being connected).
    case connectionClosed(ConnectionID)
    /// An HTTP request's head arrived on a virtual-host listener. The model
    /// routes it (host, redirect, maintenance) and places it on a backend.
    case requestReceived(ConnectionID, HTTPRequest)
    /// An HTTP request placed by the model ended.
    case requestFinished(ConnectionID, RequestOutcome)
    /// The driver's clock now reads this.
    case timeAdvanced(Instant)
}

/// A change to the configuration, as the admin API receives it.
public enum AdminCommand: Equatable, Sendable {
    /// POST/PUT `/_config`: merge globals, add or merge the named services.
    case updateConfig(ConfigUpdate)
    /// POST/PUT `/{service}`: create the service or merge into it.
    case upsertService(name: String, ServiceUpdate)
    /// DELETE `/{service}`.
    case removeService(name: String)
    /// POST/PUT `/{service}/{backend}`: create or replace the backend.
    case upsertBackend(service: String, name: String, BackendConfig)
    /// DELETE `/{service}/{backend}`.
    case removeBackend(service: String, name: String)
}
