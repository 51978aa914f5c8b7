"""What an MPI host changes outside /opt/ml by design: the SSH host keys and the job's key pair it
makes when it starts (none is baked into an image)."""

SSH_FOLDERS = ("/etc/ssh/", "/root/.ssh/")
SSH_PARENTS = ("/etc", "/etc/ssh", "/root", "/root/.ssh", "/run", "/run/sshd.pid")


def without_ssh_state(result):
    """`result` (a HostResult) with those changes dropped, so that cause() checks everything else."""
    result.changes = [p for p in result.changes if p not in SSH_PARENTS and not p.startswith(SSH_FOLDERS)]
    return result
