"""The SSH attack lab: real sshd, ssh and auditd in two network namespaces (`trailhound lab run`)."""
