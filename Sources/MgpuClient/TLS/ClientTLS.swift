import NIOSSL

/// How a client (the CLI or an agent) talks TLS to a master started with `--tls-cert/--tls-key`.
public struct ClientTLS: Sendable {
    let configuration: TLSConfiguration
    /// Tells one setting from another (clients share a connection pool per setting).
    let key: String

    /// Trusts the CA certificate(s) in the PEM file `caCertificate`, or the system's roots when nil. With
    /// `verifyHostname` off, any certificate that chains to those roots is accepted whatever name it carries
    /// (for `mgpu up`'s own agent, which dials its master on loopback and trusts exactly its certificate).
    public init(caCertificate: String?, verifyHostname: Bool = true) throws(TLSSetupError) {
        var configuration = TLSConfiguration.makeClientConfiguration()
        configuration.minimumTLSVersion = .tlsv12
        if let caCertificate {
            do {
                configuration.trustRoots = .certificates(try NIOSSLCertificate.fromPEMFile(caCertificate))
            } catch {
                throw TLSSetupError("cannot read the CA certificate \(caCertificate): \(error)")
            }
        }
        if !verifyHostname { configuration.certificateVerification = .noHostnameVerification }
        // Fails now, with the file's name, rather than at the first connection.
        do { _ = try NIOSSLContext(configuration: configuration) } catch {
            throw TLSSetupError("cannot set up TLS: \(error)")
        }
        self.configuration = configuration
        self.key = "\(caCertificate ?? "system roots") \(verifyHostname)"
    }
}

/// A TLS setting that cannot work (an unreadable CA file, a bad certificate), in one line.
public struct TLSSetupError: Error, CustomStringConvertible {
    public let description: String
    init(_ description: String) { self.description = description }
}
