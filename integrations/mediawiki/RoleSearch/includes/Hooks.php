<?php
/**
 * RoleSearch's hook handlers: the answer block on Special:Search, and a notification to rolesearch
 * (through a job) whenever a page is saved, deleted, moved or restored.
 */

namespace MediaWiki\Extension\RoleSearch;

use Config;
use DeferredUpdates;
use Html;
use JobQueueGroup;
use MediaWiki\Hook\PageMoveCompleteHook;
use MediaWiki\Hook\SpecialSearchResultsPrependHook;
use MediaWiki\Http\HttpRequestFactory;
use MediaWiki\Logger\LoggerFactory;
use MediaWiki\MediaWikiServices;
use MediaWiki\Page\Hook\ArticleUndeleteHook;
use MediaWiki\Page\Hook\PageDeleteCompleteHook;
use MediaWiki\Permissions\Authority;
use MediaWiki\Storage\Hook\PageSaveCompleteHook;
use MediaWiki\User\UserGroupManager;
use Psr\Log\LoggerInterface;
use Throwable;
use Title;
use TransactionRoundDefiningUpdate;

class Hooks implements
	SpecialSearchResultsPrependHook,
	PageSaveCompleteHook,
	PageDeleteCompleteHook,
	PageMoveCompleteHook,
	ArticleUndeleteHook
{
	/** Hits asked for beyond those shown, so the block still fills when some are dropped as unreadable. */
	private const EXTRA_HITS = 5;
	/** rolesearch's longest question. */
	private const MAX_QUERY_CHARS = 1000;

	private Config $config;
	private HttpRequestFactory $http;
	private UserGroupManager $groups;
	private JobQueueGroup $jobs;
	private LoggerInterface $log;
	private bool $runScheduled = false;

	public function __construct( Config $config, HttpRequestFactory $http, UserGroupManager $groups,
		JobQueueGroup $jobs
	) {
		$this->config = $config;
		$this->http = $http;
		$this->groups = $groups;
		$this->jobs = $jobs;
		$this->log = LoggerFactory::getInstance( 'RoleSearch' );
	}

	/**
	 * Above the wiki's own results: rolesearch's answer and its best passages the reader may read.
	 * Any failure (down, slow, an error, a body that is not the expected JSON) shows nothing and logs why.
	 * @inheritDoc
	 */
	public function onSpecialSearchResultsPrepend( $specialSearch, $output, $term ) {
		$base = rtrim( (string)$this->config->get( 'RoleSearchUrl' ), '/' );
		$term = trim( (string)$term );
		if ( $base === '' || $term === '' ) {
			return true;
		}
		try {
			$body = $this->ask( $base, mb_substr( $term, 0, self::MAX_QUERY_CHARS ), $specialSearch );
			if ( $body === null ) {
				return true;
			}
			$html = $this->render( $body, $specialSearch->getAuthority(), $specialSearch );
		} catch ( Throwable $e ) {
			$this->log->debug( 'RoleSearch: no answer block: {error}', [ 'error' => $e->getMessage() ] );
			return true;
		}
		if ( $html !== '' ) {
			$output->addModuleStyles( [ 'ext.roleSearch.styles' ] );
			$output->addHTML( $html );
		}
		return true;
	}

	/**
	 * GET /ask as the wiki user (name and groups in the proxy headers, beside the shared secret);
	 * an anonymous reader sends no identity, so rolesearch answers from public articles only.
	 */
	private function ask( string $base, string $term, $context ): ?array {
		$shown = max( 1, (int)$this->config->get( 'RoleSearchHits' ) );
		$k = min( 50, $shown + self::EXTRA_HITS );
		$timeout = (float)$this->config->get( 'RoleSearchTimeout' );
		$url = $base . '/ask?' . http_build_query( [ 'q' => $term, 'k' => $k ] );
		$req = $this->http->create( $url, [
			'method' => 'GET', 'timeout' => $timeout, 'connectTimeout' => $timeout,
			'followRedirects' => false,
		], __METHOD__ );
		$req->setHeader( 'Accept', 'application/json' );
		$secret = (string)$this->config->get( 'RoleSearchSecret' );
		if ( $secret !== '' ) {
			$req->setHeader( 'X-RoleSearch-Secret', $secret );
		}
		$user = $context->getUser();
		if ( $user->isRegistered() ) {
			$groups = array_diff( $this->groups->getUserEffectiveGroups( $user ), [ '*' ] );
			$req->setHeader( 'X-Forwarded-User', $user->getName() );
			$req->setHeader( 'X-Forwarded-Groups', implode( ',', $groups ) );
		}
		$status = $req->execute();
		if ( !$status->isOK() || $req->getStatus() !== 200 ) {
			$this->log->debug( 'RoleSearch: {url} answered {status}: {error}', [
				'url' => $base . '/ask', 'status' => $req->getStatus(),
				'error' => $status->isOK() ? substr( (string)$req->getContent(), 0, 200 ) : (string)$status,
			] );
			return null;
		}
		$body = json_decode( (string)$req->getContent(), true );
		if ( !is_array( $body ) || !isset( $body['hits'] ) || !is_array( $body['hits'] ) ) {
			$this->log->debug( 'RoleSearch: {url} did not answer with JSON hits', [ 'url' => $base . '/ask' ] );
			return null;
		}
		return $body;
	}

	/** The block's HTML, every value escaped by Html; '' when no hit is left to show. */
	private function render( array $body, Authority $reader, $context ): string {
		$shown = max( 1, (int)$this->config->get( 'RoleSearchHits' ) );
		$hits = [];
		foreach ( $body['hits'] as $hit ) {
			if ( is_array( $hit ) && $this->readable( $hit, $reader ) ) {
				$hits[] = $hit;
			}
		}
		if ( !$hits ) {
			return '';
		}
		$parts = [ Html::element( 'div', [ 'class' => 'mw-rolesearch-label' ],
			$context->msg( 'rolesearch-label' )->text() ) ];
		$answer = $this->answer( $body['answer'] ?? null, $hits, $context );
		if ( $answer !== '' ) {
			$parts[] = $answer;
		}
		$items = [];
		foreach ( array_slice( $hits, 0, $shown ) as $hit ) {
			$items[] = $this->hitItem( $hit, $context );
		}
		$parts[] = Html::element( 'div', [ 'class' => 'mw-rolesearch-passages-label mw-rolesearch-label' ],
			$context->msg( 'rolesearch-passages' )->text() );
		$parts[] = Html::rawElement( 'ol', [ 'class' => 'mw-rolesearch-hits' ], implode( '', $items ) );
		return Html::rawElement( 'div', [ 'class' => 'mw-rolesearch', 'id' => 'mw-rolesearch',
			'role' => 'region', 'aria-label' => $context->msg( 'rolesearch-label' )->text() ],
			implode( '', $parts ) );
	}

	/**
	 * The owning role(s) and the evidence sentence, only when the evidence is a passage this reader may read:
	 * an answer drawn from a page they cannot see would tell what it says.
	 */
	private function answer( $answer, array $hits, $context ): string {
		if ( !is_array( $answer ) || empty( $answer['answerable'] ) || empty( $answer['roles'] ) ) {
			return '';
		}
		$byId = [];
		foreach ( $hits as $hit ) {
			$byId[(string)( $hit['passage_id'] ?? '' )] = $hit;
		}
		$roles = [];
		$evidence = null;
		foreach ( $answer['roles'] as $role ) {
			foreach ( (array)( $role['evidence'] ?? [] ) as $pid ) {
				if ( isset( $byId[(string)$pid] ) ) {
					$roles[] = (string)$role['role'];
					$evidence = $evidence ?? $byId[(string)$pid];
					break;
				}
			}
		}
		if ( !$roles || $evidence === null ) {
			return '';
		}
		$sentence = $evidence['highlight']['text'] ?? $evidence['text'] ?? '';
		$inner = Html::element( 'span', [ 'class' => 'mw-rolesearch-role' ],
			$context->msg( 'rolesearch-answer-role', implode( ', ', $roles ) )->text() );
		$link = $this->link( $evidence, $this->shorten( (string)$sentence, 400 ), 'mw-rolesearch-evidence' );
		return Html::rawElement( 'div', [ 'class' => 'mw-rolesearch-answer' ], $inner . $link );
	}

	/** One passage: its page and section as a link to the passage's sentence, the sentence, and where it is from. */
	private function hitItem( array $hit, $context ): string {
		$title = (string)( $hit['title'] ?? '' );
		$section = (string)( $hit['section'] ?? '' );
		$heading = $section !== '' ? "$title › $section" : $title;
		$snippet = $hit['highlight']['text'] ?? $hit['text'] ?? '';
		$page = $this->wikiTitle( (string)( $hit['url'] ?? '' ) );
		$source = $page !== null
			? $context->msg( 'rolesearch-source-wiki', $page->getPrefixedText() )->text()
			: $context->msg( 'rolesearch-source-external', (string)parse_url( (string)$hit['url'], PHP_URL_HOST ) )->text();
		return Html::rawElement( 'li', [ 'class' => 'mw-rolesearch-hit' ],
			$this->link( $hit, $heading, 'mw-rolesearch-hit-link' )
			. Html::element( 'span', [ 'class' => 'mw-rolesearch-snippet' ], $this->shorten( (string)$snippet, 300 ) )
			. Html::element( 'span', [ 'class' => 'mw-rolesearch-source' ], $source )
		);
	}

	/** A link to the hit's URL (http or https only: a javascript: URL is shown as text). */
	private function link( array $hit, string $text, string $class ): string {
		$url = (string)( $hit['url'] ?? '' );
		if ( !preg_match( '#^https?://#i', $url ) ) {
			return Html::element( 'span', [ 'class' => $class ], $text );
		}
		return Html::element( 'a', [ 'class' => $class, 'href' => $url ], $text );
	}

	/** Whether the reader may read the hit's page: a page of this wiki by Authority (Lockdown's rules included). */
	private function readable( array $hit, Authority $reader ): bool {
		$url = (string)( $hit['url'] ?? '' );
		if ( $this->isWikiUrl( $url ) ) {
			$title = $this->wikiTitle( $url );
			return $title !== null && $reader->probablyCan( 'read', $title );
		}
		// Another source's page: rolesearch's own groups decided; the wiki knows nothing of it.
		return $url !== '';
	}

	private function articleBase(): string {
		return (string)wfExpandUrl( str_replace( '$1', '', (string)$this->config->get( 'ArticlePath' ) ),
			PROTO_CANONICAL );
	}

	private function isWikiUrl( string $url ): bool {
		$server = (string)wfExpandUrl( '/', PROTO_CANONICAL );
		return $url !== '' && strncasecmp( $url, $server, strlen( $server ) ) === 0;
	}

	/** The wiki page a URL of this wiki names (article path or index.php?title=), null for any other URL. */
	private function wikiTitle( string $url ): ?Title {
		if ( !$this->isWikiUrl( $url ) ) {
			return null;
		}
		$noFragment = explode( '#', $url, 2 )[0];
		$base = $this->articleBase();
		if ( strncmp( $noFragment, $base, strlen( $base ) ) === 0 ) {
			$text = rawurldecode( explode( '?', substr( $noFragment, strlen( $base ) ), 2 )[0] );
		} else {
			parse_str( (string)parse_url( $noFragment, PHP_URL_QUERY ), $query );
			$text = is_string( $query['title'] ?? null ) ? $query['title'] : '';
		}
		return $text === '' ? null : Title::newFromText( $text );
	}

	/** The text as one line, list markers dropped (the passage text keeps its Markdown-like "- "), cut to $chars. */
	private function shorten( string $text, int $chars ): string {
		$text = preg_replace( '/^\s*(?:[-*+•]|\d+[.)])\s+/mu', '', $text ) ?? $text;
		$text = trim( preg_replace( '/\s+/u', ' ', $text ) ?? $text );
		return mb_strlen( $text ) > $chars ? mb_substr( $text, 0, $chars - 1 ) . '…' : $text;
	}

	// Push: each change becomes a deduplicated job, so saving a page never waits on rolesearch.

	/** @inheritDoc */
	public function onPageSaveComplete( $wikiPage, $user, $summary, $flags, $revisionRecord, $editResult ) {
		if ( !$editResult->isNullEdit() ) {
			$this->notify( [ $wikiPage->getId() ], 'edit' );
		}
	}

	/** @inheritDoc */
	public function onPageDeleteComplete( $page, $deleter, $reason, $pageID, $deletedRev, $logEntry,
		$archivedRevisionCount
	) {
		$this->notify( [ $pageID ], 'delete' );
	}

	/** @inheritDoc */
	public function onPageMoveComplete( $old, $new, $user, $pageid, $redirid, $reason, $revision ) {
		$this->notify( [ $pageid, $redirid ], 'move' );
	}

	/** MediaWiki 1.39 (ArticleUndelete is deprecated from 1.40, where PageUndeleteComplete runs instead). */
	public function onArticleUndelete( $title, $create, $comment, $oldPageId, $restoredPages ) {
		$this->notify( [ $title->getArticleID( Title::READ_LATEST ), $oldPageId ], 'undelete' );
	}

	/** MediaWiki 1.40+. */
	public function onPageUndeleteComplete( $page, $restorer, $reason, $restoredRev, $logEntry,
		$restoredRevisionCount, $created, $restoredPageIds
	) {
		$this->notify( [ $page->getId() ], 'undelete' );
	}

	private function notify( array $pageIds, string $event ): void {
		if ( (string)$this->config->get( 'RoleSearchUrl' ) === '' ) {
			return;
		}
		$pages = array_values( array_unique( array_filter( array_map( 'intval', $pageIds ) ) ) );
		if ( !$pages ) {
			return;
		}
		// Queued with the change itself (committed with it; the same pages still queued are one job).
		$this->jobs->push( new NotifyJob( [ 'pages' => $pages, 'event' => $event ] ) );
		if ( !$this->runScheduled ) {
			// Then run right after the response is sent, rather than whenever the wiki's job rate next runs
			// a job (api.php runs none, $wgJobRunRate may be 0): the editor never waits, rolesearch hears at once.
			// A run that does not happen leaves the job queued for the wiki's own job runner.
			$this->runScheduled = true;
			DeferredUpdates::addUpdate( new TransactionRoundDefiningUpdate( static function () {
				MediaWikiServices::getInstance()->getJobRunner()->run( [
					'type' => 'roleSearchNotify', 'maxJobs' => 50, 'maxTime' => 30,
				] );
			}, __METHOD__ ), DeferredUpdates::POSTSEND );
		}
	}
}
