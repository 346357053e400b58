/// The merge rules of an update (COMPAT.md, "Merge semantics"): set values
/// replace, unset ones keep what is there, and nothing is removed that the
/// update does not name.
extension Config {
    /// The config after a POST/PUT `/_config`: non-zero global values
    /// replace the current ones; each named service is merged or added.
    public func merging(_ update: ConfigUpdate) -> Config {
        var merged = self
        let g = update.global
        if !g.balance.isEmpty { merged.balance = g.balance }
        if g.checkInterval != 0 { merged.checkInterval = g.checkInterval }
        if g.fall != 0 { merged.fall = g.fall }
        if g.rise != 0 { merged.rise = g.rise }
        if g.clientTimeout != 0 { merged.clientTimeout = g.clientTimeout }
        if g.serverTimeout != 0 { merged.serverTimeout = g.serverTimeout }
        if g.connectTimeout != 0 { merged.connectTimeout = g.connectTimeout }
        if update.httpsRedirectPresent { merged.httpsRedirect = g.httpsRedirect }
        for service in update.services {
            merged = merged.upserting(service)
        }
        return merged.canonical
    }

    /// The config with one service merged in (or added when new).
    public func upserting(_ update: ServiceUpdate) -> Config {
        var merged = self
        if let i = merged.services.firstIndex(where: { $0.name == update.service.name }) {
            merged.services[i] = merged.services[i].merging(update)
        } else {
            var fresh = ServiceConfig(name: update.service.name).merging(update)
            fresh.name = update.service.name
            merged.services.append(fresh)
        }
        return merged.canonical
    }

    /// The config without the named service.
    public func removingService(_ name: String) -> Config {
        var copy = self
        copy.services.removeAll { $0.name == name }
        return copy
    }
}

extension ServiceConfig {
    /// This service updated by `update`: non-empty strings and non-zero
    /// numbers replace; lists and flags replace when the update carries them.
    public func merging(_ update: ServiceUpdate) -> ServiceConfig {
        var merged = self
        let u = update.service
        if !u.address.isEmpty { merged.address = u.address }
        if !u.network.isEmpty { merged.network = u.network }
        if !u.balance.isEmpty { merged.balance = u.balance }
        if u.checkInterval != 0 { merged.checkInterval = u.checkInterval }
        if u.fall != 0 { merged.fall = u.fall }
        if u.rise != 0 { merged.rise = u.rise }
        if u.clientTimeout != 0 { merged.clientTimeout = u.clientTimeout }
        if u.serverTimeout != 0 { merged.serverTimeout = u.serverTimeout }
        if u.connectTimeout != 0 { merged.connectTimeout = u.connectTimeout }
        if update.present.contains(.httpsRedirect) { merged.httpsRedirect = u.httpsRedirect }
        if update.present.contains(.maintenanceMode) { merged.maintenanceMode = u.maintenanceMode }
        if update.present.contains(.virtualHosts) { merged.virtualHosts = u.virtualHosts }
        if update.present.contains(.errorPages) { merged.errorPages = u.errorPages }
        if update.present.contains(.backends) { merged.backends = u.backends }
        return merged.canonical
    }

    /// This service with `backend` added, or replacing the one of its name.
    public func upserting(_ backend: BackendConfig) -> ServiceConfig {
        var copy = self
        copy.backends.removeAll { $0.name == backend.name }
        copy.backends.append(backend)
        return copy.canonical
    }
}
