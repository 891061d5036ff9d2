/* The floor of any libpcap-based tool: open a trace and read every packet, nothing else.
 * Built and run by benches/compare.sh. */
#include <pcap/pcap.h>
#include <stdio.h>

int main(int argc, char **argv) {
    char err[PCAP_ERRBUF_SIZE];
    if (argc != 2) {
        fprintf(stderr, "usage: pcap_loop TRACE\n");
        return 2;
    }
    pcap_t *p = pcap_open_offline(argv[1], err);
    if (!p) {
        fprintf(stderr, "%s\n", err);
        return 2;
    }
    struct pcap_pkthdr *h;
    const u_char *data;
    unsigned long packets = 0, bytes = 0;
    int rc;
    while ((rc = pcap_next_ex(p, &h, &data)) == 1) {
        packets++;
        bytes += h->caplen + data[0];
    }
    printf("%lu packets %lu bytes\n", packets, bytes);
    pcap_close(p);
    return rc == PCAP_ERROR_BREAK ? 0 : 1;
}
