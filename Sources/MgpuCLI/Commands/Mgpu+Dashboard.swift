import ArgumentParser
import Foundation
import MgpuClient
import MgpuSupervisor

extension Mgpu {
    struct Dashboard: AsyncParsableCommand {
        static let configuration = CommandConfiguration(commandName: "dashboard",
            abstract: "Print a link that signs you in to the web dashboard, once; open it in a browser when there is a display.",
            discussion: """
                The link holds a one-time code, not your token: it works once, within
                60 seconds. The page keeps your token in the browser (for that address
                only) and takes the code out of the address bar.
                  mgpu dashboard            print the link; open it with xdg-open when
                                            $DISPLAY or $WAYLAND_DISPLAY is set
                  mgpu dashboard --no-open  print it only (to paste elsewhere)
                Or open the master's address and paste your token
                (~/.config/mgpu/token, or from `mgpu admin user add NAME`).
                """)

        @OptionGroup var client: ClientOptions

        @Flag(help: "Print the link only; do not start a browser.")
        var noOpen = false

        func run() async throws {
            let api = try client.client
            let code = try await client.call { try await $0.signInCode() }
            let link = "\(api.http.baseURL)/?code=\(code.code)"
            say("Open within \(Int(code.expiresIn)) s to sign in (the link works once):")
            say(link)
            let env = processEnvironment
            guard !noOpen, (env["DISPLAY"] ?? "") != "" || (env["WAYLAND_DISPLAY"] ?? "") != "",
                  let opener = Spawn.findInPath("xdg-open") else { return }
            // Not the link itself: a command line is readable by every user of the machine (/proc/PID/cmdline), and
            // the code would be theirs to take first. A page only this user can read sends the browser on.
            guard let page = Self.privatePage(redirectingTo: link) else { return }
            let process = Process()
            process.executableURL = URL(fileURLWithPath: opener)
            process.arguments = [page]
            process.standardOutput = FileHandle.nullDevice
            process.standardError = FileHandle.nullDevice
            do { try process.run() } catch { say("could not start xdg-open: \(error.localizedDescription); open the link above yourself") }
        }

        /// A 0600 HTML file in a folder of this user's ($XDG_RUNTIME_DIR, else a new 0700 one under /tmp) that sends the
        /// browser to `link`; nil when none could be made (the link is printed anyway).
        static func privatePage(redirectingTo link: String) -> String? {
            let env = processEnvironment
            var dir = env["XDG_RUNTIME_DIR"].flatMap { $0.isEmpty ? nil : $0 }
            if dir == nil {
                var template = Array("/tmp/mgpu-dashboard-XXXXXX".utf8CString)
                guard template.withUnsafeMutableBufferPointer({ mkdtemp($0.baseAddress!) != nil }) else { return nil }
                dir = String(decoding: template.prefix { $0 != 0 }.map { UInt8(bitPattern: $0) }, as: UTF8.self)
            }
            guard let dir else { return nil }
            let path = dir + "/mgpu-dashboard-\(getpid()).html"
            let escaped = link.replacingOccurrences(of: "&", with: "&amp;").replacingOccurrences(of: "\"", with: "&quot;")
            let html = "<!doctype html><meta http-equiv=\"refresh\" content=\"0; url=\(escaped)\"><a href=\"\(escaped)\">mgpu dashboard</a>\n"
            let fd = open(path, O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, 0o600)
            guard fd >= 0 else { return nil }
            defer { close(fd) }
            let bytes = Array(html.utf8)
            guard write(fd, bytes, bytes.count) == bytes.count else { return nil }
            return path
        }
    }
}
