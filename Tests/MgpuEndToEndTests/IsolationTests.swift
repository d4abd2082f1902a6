import CMgpuSpawn
import Foundation
import MgpuClient
import MgpuCore
import MgpuSupervisor
import MgpuWire
import Testing

/// Attacks a user can make on a root agent, made as that user would make them: the Unix account `nobody` with an mgpu
/// token, through the CLI (run as nobody) or the API, against a real agent running as root. Each test needs root.
extension EndToEndTests {
    @Suite(.enabled(if: geteuid() == 0, "these attacks need an agent running as root (run the tests as root)"))
    struct IsolationTests {
        /// A cluster with one root agent, a token for `nobody`, and a folder anyone may write.
        static func start(_ name: String = #function) async throws -> (TestCluster, token: String, pub: String) {
            let cluster = try await TestCluster.start(agents: ["node001": 1], name: name)
            let added = try await cluster.mgpu(["admin", "user", "add", "nobody"])
            let token = added.stdout.trimmingCharacters(in: .whitespacesAndNewlines)
            #expect(token.count == 64, "\(added.stderr)")
            chmod(cluster.dir, 0o755)
            let pub = cluster.dir + "/pub"
            try FileManager.default.createDirectory(atPath: pub, withIntermediateDirectories: true)
            chmod(pub, 0o1777)
            return (cluster, token, pub)
        }

        @Test func loaderVariablesReachOnlyTheJobRunningAsItsOwner() async throws {
            let (cluster, token, pub) = try await Self.start()
            defer { cluster.stop() }
            // A library any user can write, whose constructor leaves a mark named after the user id it runs as.
            try """
                #include <stdio.h>
                #include <unistd.h>
                __attribute__((constructor)) static void mark(void) {
                    char path[512];
                    snprintf(path, sizeof path, "\(pub)/uid-%d", (int)geteuid());
                    FILE *f = fopen(path, "a");
                    if (f) { fputs("loaded\\n", f); fclose(f); }
                }
                """.write(toFile: pub + "/p.c", atomically: true, encoding: .utf8)
            let cc = FileManager.default.isExecutableFile(atPath: "/usr/bin/cc") ? "/usr/bin/cc" : "clang"
            let built = try Spawn.capture(["/bin/sh", "-c", "\(cc) -shared -fPIC -o \(pub)/p.so \(pub)/p.c && chmod 755 \(pub)/p.so && echo ok"], timeout: 60)
            try #require(built.output.contains("ok"), "could not build the preload library with \(cc)")

            // Through the CLI, run as nobody with LD_PRELOAD set (it forwards the whole environment), and through the API.
            let viaCLI = try await cluster.mgpu(["submit", "--gpus", "0", "--", "sh", "-c", "id -u; sleep 1"], cwd: pub,
                                                env: ["MGPU_TOKEN": token, "HOME": pub], as: "nobody", accountEnv: ["LD_PRELOAD": pub + "/p.so"])
            #expect(viaCLI.status == 0, "\(viaCLI.stderr)")
            let cliJob = try #require(JobID(String(viaCLI.stdout.split(separator: " ").last ?? "").trimmingCharacters(in: .whitespacesAndNewlines)))
            let nobody = MasterClient(host: "127.0.0.1", port: cluster.port, token: token)
            var spec = JobSpec(name: "preload", user: "nobody", command: "id -u; sleep 1", workdir: pub,
                               environment: ["LD_PRELOAD": pub + "/p.so", "LD_LIBRARY_PATH": pub, "LD_AUDIT": pub + "/p.so",
                                             "PATH": "/usr/bin:/bin"],
                               request: ResourceRequest(gpusPerNode: 0))
            spec.killGraceSeconds = 1
            let apiJob = try #require(try await nobody.submit([spec]).first)

            // While they run, no supervisor (root) carries anything of the job's environment.
            try await cluster.waitForState(apiJob, [.running])
            let supervisors = processes(containing: "_supervise")
            #expect(!supervisors.isEmpty)
            for pid in supervisors {
                let environ = String(decoding: FileManager.default.contents(atPath: "/proc/\(pid)/environ") ?? Data(), as: UTF8.self)
                #expect(!environ.contains("LD_") && !environ.contains(pub), "supervisor \(pid) environment: \(environ)")
            }
            for id in [cliJob, apiJob] {
                let done = try await cluster.waitForState(id, [.completed, .failed])
                #expect(done.state == .completed, "\(done.reason ?? "")")
                #expect(try await cluster.mgpu(["logs", id.rawValue]).stdout == "65534\n")
            }
            let marks = try FileManager.default.contentsOfDirectory(atPath: pub).filter { $0.hasPrefix("uid-") }
            #expect(marks.contains("uid-65534"), "the library was loaded in the job, as nobody: \(marks)")
            #expect(!marks.contains("uid-0"), "the library ran as root: \(marks)")
        }

        @Test func theWorkingDirectoryIsEnteredAsTheOwner() async throws {
            let (cluster, token, pub) = try await Self.start()
            defer { cluster.stop() }
            // Root's private folder: root may enter it, nobody may not.
            let secret = cluster.dir + "/private"
            try FileManager.default.createDirectory(atPath: secret + "/inner", withIntermediateDirectories: true)
            chmod(secret, 0o700)
            let nobody = MasterClient(host: "127.0.0.1", port: cluster.port, token: token)
            let spec = JobSpec(name: "enter", user: "nobody", command: "touch \(pub)/ran-in-private", workdir: secret + "/inner",
                               environment: [:], request: ResourceRequest(gpusPerNode: 0))
            let refused = try #require(try await nobody.submit([spec]).first)
            let failed = try await cluster.waitForState(refused, [.completed, .failed])
            #expect(failed.state == .failed)
            #expect(failed.reason?.contains("cannot enter \(secret)/inner: Permission denied") == true, "\(failed.reason ?? "")")
            #expect(!FileManager.default.fileExists(atPath: pub + "/ran-in-private"), "nothing ran, anywhere")
            let logs = try await cluster.mgpu(["logs", refused.rawValue], env: ["MGPU_TOKEN": token])
            #expect(logs.stderr.contains("mgpu: cannot enter \(secret)/inner: Permission denied"), "the owner sees why in the job's stderr: \(logs.stderr)")

            // The same folder for the admin's own job (root): it runs there.
            let mine = try await cluster.submit(["--gpus", "0", "pwd"], cwd: secret + "/inner")
            try await cluster.waitForState(mine, [.completed])
            #expect(try await cluster.mgpu(["logs", mine.rawValue]).stdout == "\(secret)/inner\n")
        }

        @Test func aJobCannotReachItsFolderOnTheNode() async throws {
            let (cluster, token, pub) = try await Self.start()
            defer { cluster.stop() }
            // A file of root's that the attack aims at, and root's secrets.
            let victim = cluster.dir + "/victim"
            try "original\n".write(toFile: victim, atomically: true, encoding: .utf8)
            let folder = cluster.dir + "/node001/jobs"
            // For each file of its job folder: replace it with a link to /etc/shadow, to the victim, to /dev/zero, with a
            // FIFO; rewrite `pid` to 1; read what root keeps there. Every attempt must be refused.
            let names = ["command", "workdir", "environ", "work.json", "stdout", "stderr", "pid", "exit", "exit.tmp", "stdin", "pid.tmp"]
            let attack = """
                d=\(folder)/$MGPU_JOB_ID
                try() { if "$@" 2>/dev/null; then echo "DONE: $*"; else echo "denied: $*"; fi; }
                try ls "$d"
                for f in \(names.joined(separator: " ")); do
                  try ln -sf /etc/shadow "$d/$f"
                  try ln -sf \(victim) "$d/$f"
                  try ln -sf /dev/zero "$d/$f"
                  try mkfifo "$d/$f"
                  try cat "$d/$f"
                done
                try sh -c "echo '1 1' > $d/pid"
                try mv "$d" "$d.gone"
                try ln -sf / "$d.link"
                echo finished
                """
            let id = try await cluster.submit(["--gpus", "0", attack], cwd: pub, env: ["MGPU_TOKEN": token])
            try await cluster.waitForState(id, [.running, .completed, .failed])

            // The folder is root's, private, and so is every file in it.
            var info = stat()
            if stat(folder + "/\(id)", &info) == 0 {
                #expect(info.st_uid == 0 && info.st_mode & 0o777 == 0o700, "the job folder: uid \(info.st_uid) mode \(String(info.st_mode & 0o777, radix: 8))")
            }
            let done = try await cluster.waitForState(id, [.completed, .failed])
            #expect(done.state == .completed, "\(done.reason ?? "")")
            let output = try await cluster.mgpu(["logs", id.rawValue], env: ["MGPU_TOKEN": token]).stdout
            #expect(output.contains("finished"))
            #expect(!output.contains("DONE"), "an attempt succeeded:\n\(output)")
            #expect(output.components(separatedBy: "denied:").count - 1 == names.count * 5 + 4, "\(output)")
            #expect(!output.contains("root:"), "nothing of /etc/shadow reached the job")
            #expect(try String(contentsOfFile: victim, encoding: .utf8) == "original\n")
            #expect(stat(folder, &info) == 0 && info.st_uid == 0 && info.st_mode & 0o777 == 0o700, "the agent's jobs folder")

            // The agent is fine: the next job runs.
            let next = try await cluster.submit(["--gpus", "0", "echo next"], cwd: pub, env: ["MGPU_TOKEN": token])
            try await cluster.waitForState(next, [.completed], timeout: 15)
        }

        /// Defence in depth: even if something could write a job folder, the agent (root) never follows what is put
        /// there. The test plays that attacker (as root, which only it can be here): links to a secret, a FIFO, a
        /// rewritten `pid`, a link to a folder to be removed. The agent must not ship the secret, hang, signal the
        /// wrong process, or delete outside the folder.
        @Test func theAgentNeverFollowsWhatIsPlacedInAJobFolder() async throws {
            let (cluster, token, pub) = try await Self.start()
            defer { cluster.stop() }
            let secret = cluster.dir + "/secret.txt"
            try "TOPSECRET\n".write(toFile: secret, atomically: true, encoding: .utf8)
            chmod(secret, 0o600)
            let keep = cluster.dir + "/keep"
            try FileManager.default.createDirectory(atPath: keep, withIntermediateDirectories: true)
            try "keep me\n".write(toFile: keep + "/file", atomically: true, encoding: .utf8)
            // A process that must survive: its pid goes into the job's `pid` file.
            let bystander = try Spawn.start(["/bin/sleep", "300"], newSession: true)
            cluster.extraPids.append(bystander)

            let id = try await cluster.submit(["--gpus", "0", "--kill-grace", "1", "echo started; sleep 300"], cwd: pub, env: ["MGPU_TOKEN": token])
            try await cluster.waitForState(id, [.running])
            let dir = cluster.dir + "/node001/jobs/\(id)"
            try await waitUntil("the job's pid record", timeout: 10) { TestCluster.jobRecord(dir, "pid") != nil }
            try await waitUntil("its first output shipped", timeout: 10) {
                try await cluster.mgpu(["logs", id.rawValue], env: ["MGPU_TOKEN": token]).stdout.contains("started")
            }
            for name in ["stdout", "work.json"] {
                unlink(dir + "/" + name)
                symlink(secret, dir + "/" + name)
            }
            unlink(dir + "/stderr")
            mkfifo(dir + "/stderr", 0o600)
            // The pid record rewritten, as the attribute the supervisor set and as the file an older one wrote.
            let forged = "\(bystander) \(bystander)\n"
            #expect(setxattr(dir, "user.mgpu.pid", forged, forged.utf8.count, 0) == 0)
            try forged.write(toFile: dir + "/pid", atomically: false, encoding: .utf8)
            symlink(keep, dir + "/subdir")

            // The agent stays responsive and cancels the right processes.
            let cancelled = try await cluster.mgpu(["cancel", id.rawValue], env: ["MGPU_TOKEN": token])
            #expect(cancelled.status == 0, "\(cancelled.stderr)")
            try await cluster.waitForState(id, [.cancelled], timeout: 20)
            #expect(kill(bystander, 0) == 0, "the process named in the rewritten pid file was not signalled")
            let logs = try await cluster.mgpu(["logs", id.rawValue], env: ["MGPU_TOKEN": token]).stdout
            #expect(!logs.contains("TOPSECRET"), "the secret behind the link was shipped as output: \(logs)")
            let next = try await cluster.submit(["--gpus", "0", "echo next"], cwd: pub, env: ["MGPU_TOKEN": token])
            try await cluster.waitForState(next, [.completed], timeout: 15)
            // The folder goes; what its links pointed at stays.
            try await waitUntil("the job folder removed", timeout: 15) { !FileManager.default.fileExists(atPath: dir) }
            #expect(try String(contentsOfFile: keep + "/file", encoding: .utf8) == "keep me\n")
            #expect(try String(contentsOfFile: secret, encoding: .utf8) == "TOPSECRET\n")
        }
    }
}
