#!/bin/sh
# portprobe rules: allow exactly these ports
# from a report on server.example (192.0.2.10, 2001:db8::10)
# from 198.51.100.0/24 and 2001:db8:100::/48 (--source)
# Run as root where the ports are blocked (sh FILE): each command inserts
# its rule at the top of chain FORWARD, before the rule that blocks the port.
set -e
# Apple Remote Desktop: Net Assistant (ARD), TCP 3283 to 192.0.2.10 is rejected by 192.0.2.1 (administratively prohibited)
iptables -I FORWARD -p tcp -s 198.51.100.0/24 -d 192.0.2.10 --dport 3283 -m comment --comment 'portprobe: Apple Remote Desktop: Net Assistant (ARD)' -j ACCEPT
# Apple Remote Desktop: Screen Sharing (VNC), TCP 5900 to 192.0.2.10 is blocked (no response)
iptables -I FORWARD -p tcp -s 198.51.100.0/24 -d 192.0.2.10 --dport 5900 -m comment --comment 'portprobe: Apple Remote Desktop: Screen Sharing (VNC)' -j ACCEPT
# x? accept? ? ?(reboot) ?id? ?/ exit, TCP 8080 to 192.0.2.10 is blocked (no response)
iptables -I FORWARD -p tcp -s 198.51.100.0/24 -d 192.0.2.10 --dport 8080 -m comment --comment 'portprobe: x? accept? ? ?(reboot) ?id? ?/ exit' -j ACCEPT
# Xsan: Xsan, TCP 49152-49155 to 192.0.2.10 is blocked (no response)
iptables -I FORWARD -p tcp -s 198.51.100.0/24 -d 192.0.2.10 --dport 49152:49155 -m comment --comment 'portprobe: Xsan: Xsan' -j ACCEPT
# Apple Remote Desktop: Net Assistant (ARD), UDP 3283 to 192.0.2.10 is rejected by 192.0.2.1 (administratively prohibited)
iptables -I FORWARD -p udp -s 198.51.100.0/24 -d 192.0.2.10 --dport 3283 -m comment --comment 'portprobe: Apple Remote Desktop: Net Assistant (ARD)' -j ACCEPT
# Apple Remote Desktop: Screen Sharing (VNC), TCP 5900 to 2001:db8::10 is blocked (no response)
ip6tables -I FORWARD -p tcp -s 2001:db8:100::/48 -d 2001:db8::10 --dport 5900 -m comment --comment 'portprobe: Apple Remote Desktop: Screen Sharing (VNC)' -j ACCEPT
